-- name: enable_forwarding
-- Turn forwarding on for the first time and queue every event already in the warehouse
-- (tracks: every collection that is on), once: the row in _forwarding stays (emit --off
-- only marks it).  DO NOTHING: events queued before (a warehouse upgraded from 0003) keep
-- their state.
WITH enabled AS (
    INSERT INTO _forwarding DEFAULT VALUES
    ON CONFLICT DO NOTHING
    RETURNING 1
)
INSERT INTO _outbox (id, "timestamp")
SELECT id, "timestamp" FROM tracks
WHERE EXISTS (SELECT FROM enabled)
ON CONFLICT (id) DO NOTHING
