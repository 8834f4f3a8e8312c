-- name: reject_months
-- The months (of rejected_at, UTC) before :before that still have rows in _rejects.
SELECT DISTINCT CAST(date_trunc('month', rejected_at AT TIME ZONE 'UTC') AS date) AS month
FROM _rejects
WHERE rejected_at < CAST(:before AS timestamptz)
