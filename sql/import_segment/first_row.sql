-- name: first_row (a branch of import_segment/first_rows.sql: $table a quoted identifier,
-- $name its literal).  The time-led key of every event table answers it from the start of
-- its first partition, stopping at the first drip- id.
SELECT $name AS name, (SELECT min("timestamp") FROM $table WHERE id LIKE 'drip-%') AS first_at
