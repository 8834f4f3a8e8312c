-- name: enable_forwarding
-- Turn forwarding on for the first time and queue every event already in the warehouse
-- (tracks: every collection that is on), once: the row in _forwarding stays (emit --off
-- only marks it).  DO NOTHING: events queued before (a warehouse upgraded from 0003) keep
-- their state.  Only drip-loader's own events (drip- ids): rows import-segment copied from
-- Segment came from Segment, and sending them back would count them twice there.
WITH enabled AS (
    INSERT INTO _forwarding DEFAULT VALUES
    ON CONFLICT DO NOTHING
    RETURNING 1
)
INSERT INTO _outbox (id, "timestamp")
SELECT id, "timestamp" FROM tracks
WHERE EXISTS (SELECT FROM enabled) AND id LIKE 'drip-%'
ON CONFLICT (id) DO NOTHING
