-- name: copy_batch (template, filled in by loader.pipeline.import_plan)
-- Copy the staged rows numbered (:done, :done + :batch_size] (import_segment/stage.sql) into
-- our table, in (timestamp, id) order.  ON CONFLICT DO NOTHING without a target: whatever
-- our key is, a row already copied (a rerun, a resumed run) is skipped.  A row whose value
-- cannot land (_bad names its column) is not inserted and comes back in `bad`: the caller
-- rolls the batch back and says which.  $derive: for a collection, the tracks row of each
-- row whose id Segment's tracks lacks (every event has its row in both, as dbt's
-- relationships test expects).
WITH batch AS MATERIALIZED (
    SELECT * FROM _import_rows
    WHERE n > :done AND n <= CAST(:done AS bigint) + :batch_size
), added AS (
    INSERT INTO $target ($columns)
    SELECT $columns FROM batch WHERE _bad IS NULL
    ORDER BY n
    ON CONFLICT DO NOTHING
    RETURNING 1
)$derive
SELECT (SELECT count(*) FROM batch) AS read,
       (SELECT count(*) FROM added) AS added,
       $derived AS derived,
       (SELECT ARRAY[id, _bad] FROM batch WHERE _bad IS NOT NULL ORDER BY n LIMIT 1) AS bad
