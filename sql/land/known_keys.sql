-- name: known_keys
-- Which of a chunk's event keys (:keys, comma-separated) are landed already: their
-- payloads need not be sent or parsed again, so a replay costs an index probe per record
-- (a concurrent lander can still add a key after this; insert_raw.sql's ON CONFLICT
-- covers that).
SELECT _event_key FROM _raw_events WHERE _event_key = ANY (string_to_array(:keys, ','))
