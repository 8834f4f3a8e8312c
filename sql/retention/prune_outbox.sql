-- name: prune_outbox
-- Delete up to :limit _outbox rows Segment accepted before :before, oldest first
-- (the partial index ix__outbox_sent), and count them in _forwarding.pruned_sent.  While
-- forwarding is off, rows queued since the off are kept: emit --on queues every event
-- received since then, and these rows are what keeps their sent events from going twice.
-- With :dry_run nothing is deleted (the count is of what would be).
WITH doomed AS (
    SELECT o.id FROM _outbox o
    WHERE o.status = 'sent' AND o.sent_at < CAST(:before AS timestamptz)
      AND NOT EXISTS (SELECT FROM _forwarding f WHERE o.queued_at >= f.off_since)
    ORDER BY o.sent_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM _outbox o USING doomed d
    WHERE o.id = d.id AND NOT :dry_run
    RETURNING 1
), counted AS (
    UPDATE _forwarding SET pruned_sent = pruned_sent + (SELECT count(*) FROM gone)
    WHERE EXISTS (SELECT FROM gone)
)
SELECT (SELECT count(*) FROM doomed) AS found, (SELECT count(*) FROM gone) AS deleted
