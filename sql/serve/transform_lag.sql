-- name: transform_lag
-- How far the collection tables are behind the landing table: the number of events
-- waiting in the queue and the age in seconds of the oldest one (0 when none), for
-- serve's /metrics.  An event a transform has claimed but not committed still counts.
SELECT count(*) AS pending,
       coalesce(extract(epoch FROM now() - min(r.received_at)), 0) AS lag_seconds
FROM _pending p
-- one probe per queued event, in its month's partition (never hashed over every month)
CROSS JOIN LATERAL (
    SELECT r.received_at FROM _raw_events r
    WHERE r.occurred_at = p.occurred_at AND r._event_key = p._event_key
    LIMIT 1
) AS r
