-- name: derive_tracks (a CTE of import_segment/copy_batch.sql, for collection tables)
-- The tracks row of each row of the batch whose id Segment's tracks lacks.
, derived AS (
    INSERT INTO tracks ($common)
    SELECT $common FROM batch WHERE lacks_tracks AND _bad IS NULL
    ORDER BY n
    ON CONFLICT DO NOTHING
    RETURNING 1
)
