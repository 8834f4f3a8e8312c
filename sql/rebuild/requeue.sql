-- name: requeue_all
-- Queue every landed event for the transform.
INSERT INTO _pending (_event_key, occurred_at) SELECT _event_key, occurred_at FROM _raw_events
