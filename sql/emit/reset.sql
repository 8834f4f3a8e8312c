-- name: reset_forwarding
-- emit --off when Segment never confirmed any event (no sent row, none deleted by
-- retention): back to "never turned on".  Everything queued is dropped: nothing of it
-- reached Segment, and the next emit queues the whole warehouse again, so no event is
-- lost.  Runs under lock_outbox.sql: no emitter can be between Segment's answer and its
-- mark.  Returns the rows dropped.
WITH dropped AS (
    DELETE FROM _outbox RETURNING 1
), forgotten AS (
    DELETE FROM _forwarding
)
SELECT count(*) FROM dropped
