-- name: debugger_origins
-- Which request stored each of these events first: the origin of their _raw_events rows
-- (:keys, comma-separated).  The debugger page tells "landed" (this request's origin) from
-- "duplicate" (another's) with it, only while someone watches.  A semi-join on the primary
-- key's index, as known_keys.sql.
SELECT r._event_key AS key, r.origin
FROM unnest(string_to_array(:keys, ',')) AS k
JOIN _raw_events r ON r._event_key = k
