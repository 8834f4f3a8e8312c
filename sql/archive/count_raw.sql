-- name: count_raw
-- Raw events of the month [:low, :high), under the month's lock (drop.sql's caller): equal to
-- the lines of the checked file means the file holds every one of them (raw rows are only
-- ever added, and one archive runs at a time).
SELECT count(*)
FROM _raw_events
WHERE occurred_at >= CAST(:low AS timestamptz) AND occurred_at < CAST(:high AS timestamptz)
