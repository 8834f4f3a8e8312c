-- name: reenable_forwarding
-- Turn forwarding on again after emit --off: queue the events received since it was
-- turned off (the transform queued every event received before, even while it was off),
-- then clear the mark.  received_at is the loader's first receipt of the event and a
-- rebuild keeps it, so an event Segment confirmed before the off (its sent row perhaps
-- deleted by retention since) is never queued again; the few received after the off but
-- transformed before it keep their outbox rows (retention spares them while it is off:
-- retention/prune_outbox.sql), so DO NOTHING leaves them as they are.  Only drip-loader's
-- own events (drip- ids), as in emit/enable.sql: rows import-segment copied came from Segment.
WITH queued AS (
    INSERT INTO _outbox (id, "timestamp")
    SELECT t.id, t."timestamp" FROM tracks t, _forwarding f
    WHERE f.off_since IS NOT NULL AND t.received_at >= f.off_since AND t.id LIKE 'drip-%'
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
), turned_on AS (
    UPDATE _forwarding SET off_since = NULL WHERE off_since IS NOT NULL
)
SELECT count(*) FROM queued
