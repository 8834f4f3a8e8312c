-- name: known_keys
-- Which of a chunk's event keys (:keys, comma-separated, with their occurred_at in :times,
-- as COPY reads them) are landed already: their payloads need not be sent or parsed again,
-- so a replay costs an index probe per record (a concurrent lander can still add a key
-- after this; insert_raw.sql's ON CONFLICT covers that).  A semi-join of the pairs with the
-- primary key (occurred_at, _event_key): each probe goes to its month's partition only.
-- A key with the wrong time would only be missed (and skipped later by ON CONFLICT), never
-- taken for another event: the key alone names the event.
SELECT k
FROM unnest(string_to_array(:keys, ','), CAST(string_to_array(:times, ',') AS timestamptz[])) AS u (k, t)
WHERE EXISTS (SELECT FROM _raw_events r WHERE r.occurred_at = u.t AND r._event_key = u.k)
