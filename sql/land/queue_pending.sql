-- name: queue_pending (tail; follows land/insert_raw.sql)
-- Queue the newly landed events for a later transform (run_transforms claims them).
queued AS (
    INSERT INTO _pending (_event_key)
    SELECT _event_key FROM src
)
SELECT (SELECT count(*) FROM src) AS events
