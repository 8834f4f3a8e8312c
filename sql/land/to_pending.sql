-- name: land_to_pending
-- Land the staged chunk (each event once: the first copy wins, a retry with a changed
-- subscriber snapshot is the same event) and queue the new events for the transform.
-- Used where acknowledging must not wait for the transform (the webhook receiver).
WITH landed AS (
    INSERT INTO _raw_events (_event_key, event, occurred_at, received_at, is_email, _load_id, origin, payload)
    SELECT _event_key, event, occurred_at, coalesce(CAST(:received_at AS timestamptz), now()),
           is_email, :load_id, origin, payload
    FROM _stage
    -- One lock order for every lander, so overlapping loads cannot deadlock; among copies
    -- of one event the earliest in the input wins (ctid: the stage is filled by one COPY).
    ORDER BY _event_key, ctid
    ON CONFLICT (_event_key) DO NOTHING
    RETURNING _event_key
), queued AS (
    INSERT INTO _pending (_event_key)
    SELECT _event_key FROM landed
)
SELECT (SELECT count(*) FROM landed) AS landed
