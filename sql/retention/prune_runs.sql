-- name: prune_runs
-- Delete up to :limit _runs rows that started before :before.  The newest run of
-- each command stays whatever its age (status shows the last drip sync from it), and so
-- does a run recorded running whose process still holds its advisory lock (runs.py); one
-- whose process is gone is deleted with the rest.  With :dry_run nothing is deleted.
WITH ranked AS (
    SELECT load_id, status, started_at,
           row_number() OVER (PARTITION BY command ORDER BY started_at DESC) AS newest
    FROM _runs
), doomed AS (
    SELECT load_id FROM ranked
    WHERE newest > 1 AND started_at < CAST(:before AS timestamptz)
      AND CASE WHEN status = 'running'
               THEN pg_try_advisory_xact_lock(:lock_class, hashtext(load_id)) ELSE true END
    LIMIT :limit
), gone AS (
    DELETE FROM _runs r USING doomed d
    WHERE r.load_id = d.load_id AND NOT :dry_run
    RETURNING 1
)
SELECT (SELECT count(*) FROM doomed) AS found, (SELECT count(*) FROM gone) AS deleted
