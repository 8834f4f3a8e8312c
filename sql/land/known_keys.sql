-- name: known_keys
-- Which of a chunk's event keys (:keys, comma-separated) are landed already: their
-- payloads need not be sent or parsed again, so a replay costs an index probe per record
-- (a concurrent lander can still add a key after this; insert_raw.sql's ON CONFLICT
-- covers that).  A semi-join of the keys with the primary key's index, not
-- `_event_key = ANY (keys)`: with thousands of keys the planner runs that one as a filter
-- over a sequential scan of all of _raw_events, whose cost grows with the warehouse.
SELECT k FROM unnest(string_to_array(:keys, ',')) AS k
WHERE EXISTS (SELECT FROM _raw_events r WHERE r._event_key = k)
