-- name: insert_raw (head; the tail is transform/map_and_insert.sql)
-- Land the staged chunk (each event once: the first copy wins, a retry with a changed
-- subscriber snapshot is the same event) and hand exactly the newly landed events, as
-- `src`, to the tail in the same statement: a file load maps what it lands without a
-- second read, and a duplicate is never mapped (or queued) twice.
WITH src AS (
    INSERT INTO _raw_events (_event_key, event, occurred_at, received_at, is_email, _load_id, origin, payload)
    SELECT _event_key, event, occurred_at, now(),
           is_email, :load_id, origin, payload
    FROM _stage
    -- One lock order for every lander (the key's), so overlapping loads cannot deadlock;
    -- among copies of one event the earliest in the input wins.  The key leads with the
    -- event's time (its month's partition, then its place in that index), and the time is
    -- part of the event id: so the key is unique exactly when the event id is.
    ORDER BY occurred_at, _event_key, seq
    ON CONFLICT (occurred_at, _event_key) DO NOTHING
    RETURNING _event_key, event, occurred_at, received_at, payload
),
