-- name: disable_forwarding
-- emit --off when Segment has confirmed events before: mark forwarding off from now on.
-- The transform stops queueing events received from now (it still queues those received
-- before, so emit --on has one clean boundary: reenable.sql); what is queued stays queued.
UPDATE _forwarding SET off_since = now() WHERE off_since IS NULL
RETURNING off_since
