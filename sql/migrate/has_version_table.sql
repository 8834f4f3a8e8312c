-- name: has_version_table
-- Whether schema :schema has alembic's version table (it was migrated at least once).
SELECT to_regclass(format('%I.alembic_version', CAST(:schema AS text))) IS NOT NULL
