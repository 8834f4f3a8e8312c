-- name: land_and_transform (head; the tail is transform/map_and_insert.sql)
-- Land the staged chunk (each event once: the first copy wins, a retry with a changed
-- subscriber snapshot is the same event) and hand exactly the newly landed events to the
-- mapping, in the same statement: a file load transforms what it lands without a second
-- read, and a duplicate is never mapped twice.
WITH src AS (
    INSERT INTO _raw_events (_event_key, event, occurred_at, received_at, is_email, _load_id, origin, payload)
    SELECT _event_key, event, occurred_at, coalesce(CAST(:received_at AS timestamptz), now()),
           is_email, :load_id, origin, payload
    FROM _stage
    ORDER BY _event_key  -- one lock order for every lander: overlapping loads cannot deadlock
    ON CONFLICT (_event_key) DO NOTHING
    RETURNING _event_key, event, occurred_at, received_at, payload
),
