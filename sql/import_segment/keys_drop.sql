-- name: keys_drop
-- The keys of the previous table (import_segment/keys.sql), if any.
DROP TABLE IF EXISTS pg_temp._import_keys
