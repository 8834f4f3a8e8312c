-- name: month_state
-- What rebuild may do with the month [:low, :high) of tracks (every collection row has its
-- tracks row): its rows, those whose raw event is not in _raw_events (archived, or loaded
-- without raw), and those of collections that are off (:slugs are the ones on).  A month
-- with neither can be emptied and mapped again whole; otherwise only the rows with raw
-- events of collections that are on are replaced.  One join of the month's two partitions,
-- both keyed by (time, id).
SELECT count(*) AS "rows",
       count(*) FILTER (WHERE r._event_key IS NULL) AS without_raw,
       count(*) FILTER (WHERE NOT (t.event = ANY (CAST(:slugs AS text[])))) AS off
FROM tracks t
LEFT JOIN _raw_events r
       ON r.occurred_at = t."timestamp" AND r._event_key = t.id
      AND r.occurred_at >= CAST(:low AS timestamptz) AND r.occurred_at < CAST(:high AS timestamptz)
WHERE t."timestamp" >= CAST(:low AS timestamptz) AND t."timestamp" < CAST(:high AS timestamptz)
