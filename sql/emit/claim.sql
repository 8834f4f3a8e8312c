-- name: claim_outbox
-- Take the next :limit pending events after the cursor (:after_queued_at, :after_id) and
-- return their warehouse rows, to build the Segment messages from: the claim's order key,
-- the common columns, then the property columns of every collection (NULL where a
-- collection has none), in the order of loader.emit.CLAIM_COLUMNS.  A template
-- (string.Template): loader.mapping puts in one branch (emit/claim_collection.sql) per
-- collection that is on or was on once (its table may hold events still pending).
-- FOR UPDATE SKIP LOCKED: rows another emitter holds are skipped, so two emitters never
-- send the same events at once; the locks last until the caller has recorded the
-- outcomes, so a crash before that leaves the events pending (sent again, same id).
-- The cursor walks the partial index of pending rows once per run: rows this run already
-- marked are never scanned again, and a failed event is not retried in the same run.
-- An _outbox row is written by the statement that writes the event's warehouse rows, so
-- it is only visible once they are (during a rebuild an event without rows is claimed,
-- not returned, and stays pending).
WITH claimed AS MATERIALIZED (
    SELECT id, queued_at, "timestamp"
    FROM _outbox
    WHERE status = 'pending'
      AND (queued_at, id) > (CAST(:after_queued_at AS timestamptz), CAST(:after_id AS text))
    ORDER BY queued_at, id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
$branches
