-- name: known_keys
-- Which of a chunk's event keys (:keys, comma-separated, with their occurred_at in :times,
-- as COPY reads them) are landed already: their payloads need not be sent or parsed again,
-- so a replay costs an index probe per record (a concurrent lander can still add a key
-- after this; insert_raw.sql's ON CONFLICT covers that).  One probe of the primary key
-- (occurred_at, _event_key) per key, in its month's partition only: a LATERAL subquery
-- with LIMIT is never turned into a join, which the planner would hash over every
-- partition (it knows how many keys a chunk has and reads them all), a cost that grows
-- with the warehouse.  A key with the wrong time would only be missed (and skipped later
-- by ON CONFLICT), never taken for another event: the key alone names the event.
SELECT u.k
FROM unnest(string_to_array(:keys, ','), CAST(string_to_array(:times, ',') AS timestamptz[])) AS u (k, t)
CROSS JOIN LATERAL (
    SELECT FROM _raw_events r WHERE r.occurred_at = u.t AND r._event_key = u.k LIMIT 1
) AS landed
