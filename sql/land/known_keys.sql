-- name: known_keys
-- Which of a chunk's event keys (:keys, comma-separated) are landed already: their
-- payloads need not be sent or parsed again, so a replay costs an index probe per record
-- (a concurrent lander can still add a key after this; insert_raw.sql's ON CONFLICT
-- covers that).  A join of the keys with the index, not `_event_key = ANY (keys)`: with
-- thousands of keys the planner reads that one as a filter over a sequential scan of the
-- whole table, up to the size where it gives up on it (about 3x slower at 100k events,
-- and it grows with the warehouse).
SELECT k FROM unnest(string_to_array(:keys, ',')) AS k
WHERE EXISTS (SELECT FROM _raw_events r WHERE r._event_key = k)
