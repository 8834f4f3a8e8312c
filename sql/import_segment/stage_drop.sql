-- name: stage_drop
-- The staged rows of the previous table (import_segment/stage.sql), if any.
DROP TABLE IF EXISTS pg_temp._import_rows
