-- name: debugger_last_hour
-- Events received in the last hour per collection (every process), for the debugger page:
-- tracks holds one row per event of every collection that is on, its `event` is the
-- collection, and received_at has a BRIN index.
SELECT event AS collection, count(*) AS events
FROM tracks
WHERE received_at > now() - interval '1 hour'
GROUP BY event
