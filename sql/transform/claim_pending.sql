-- name: claim_pending (head; the tail is transform/map_and_insert.sql)
-- Take up to :batch_size queued events.  Rows another transform holds are skipped, not
-- waited for; rows landed by a transaction that commits later are claimed by a later
-- batch: nothing is skipped, nothing is mapped twice.
WITH claimed AS (
    DELETE FROM _pending
    WHERE ctid = ANY (ARRAY(SELECT ctid FROM _pending LIMIT :batch_size FOR UPDATE SKIP LOCKED))
    RETURNING _event_key, occurred_at
), src AS (
    -- One probe of the whole key per event, in its month's partition only (a LATERAL
    -- with LIMIT is never made a join the planner could hash over every partition).
    SELECT DISTINCT ON (r._event_key) r._event_key, r.event, r.occurred_at, r.received_at, r.payload
    FROM claimed c
    CROSS JOIN LATERAL (
        SELECT r._event_key, r.event, r.occurred_at, r.received_at, r.payload
        FROM _raw_events r
        WHERE r.occurred_at = c.occurred_at AND r._event_key = c._event_key
        LIMIT 1
    ) AS r
),
