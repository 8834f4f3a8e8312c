-- name: copy_batch (template, filled in by loader.pipeline.import_plan)
-- Copy the rows numbered (:done, :done + :batch_size] of _import_keys from Segment's table
-- into ours: each read by its primary key, its columns converted ($values), inserted in
-- (timestamp, id) order.  ON CONFLICT DO NOTHING without a target: whatever our key is, a
-- row already copied (a rerun, a resumed run) is skipped.  A row whose value cannot land
-- ($bad names its column) is not inserted and comes back in `bad`: the caller rolls the
-- batch back and says which.  $derive: for a collection, the tracks row of each row added
-- when Segment's tracks had none (every event has its row in both, as dbt's relationships
-- test expects).
WITH batch AS MATERIALIZED (
    SELECT k.n$values,
           $bad AS _bad
    FROM _import_keys k
    JOIN $source s ON $id = k.id
    WHERE k.n > :done AND k.n <= CAST(:done AS bigint) + :batch_size
), added AS (
    INSERT INTO $target ($columns)
    SELECT $columns FROM batch WHERE _bad IS NULL
    ORDER BY "timestamp", id
    ON CONFLICT DO NOTHING
    RETURNING $returning
)$derive
SELECT (SELECT count(*) FROM batch) AS read,
       (SELECT count(*) FROM added) AS added,
       $derived AS derived,
       (SELECT ARRAY[id, _bad] FROM batch WHERE _bad IS NOT NULL ORDER BY n LIMIT 1) AS bad
