-- name: derive_tracks (a CTE of import_segment/copy_batch.sql, for collection tables)
, derived AS (
    INSERT INTO tracks ($common)
    SELECT $common FROM added
    ON CONFLICT DO NOTHING
    RETURNING 1
)
