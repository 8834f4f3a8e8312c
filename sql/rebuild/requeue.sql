-- name: requeue_all
-- Queue every landed event for the transform.
INSERT INTO _pending (_event_key) SELECT _event_key FROM _raw_events
