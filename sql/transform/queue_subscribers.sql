-- name: queue_subscribers (a CTE of transform/map_and_insert.sql; left out of a backfill,
-- whose events queued their snapshots when they were first transformed)
, queue_subscribers AS (
    -- The subscribers dimension is merged per run, not per chunk (transform/merge_subscribers.sql):
    -- a subscriber appears in most chunks of a file, and an upsert per subscriber per chunk
    -- was a third of the database work of a load.  Here each event with a Drip subscriber id
    -- only queues a reference to its snapshot, in an index-free heap, in the same transaction as its rows.
    INSERT INTO _subscriber_changes (id, occurred_at, _event_key)
    SELECT payload -> 'data' -> 'subscriber' ->> 'id', occurred_at, _event_key
    FROM src
    WHERE jsonb_typeof(payload -> 'data' -> 'subscriber' -> 'id') IN ('string', 'number')
      AND payload -> 'data' -> 'subscriber' ->> 'id' <> ''
)
