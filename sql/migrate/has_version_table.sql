-- name: has_version_table
-- Which version table schema :schema has: '_alembic_version' (spec §5: loader tables start
-- with _), 'alembic_version' (a warehouse migrated before the rename), or NULL (never migrated).
SELECT CASE
    WHEN to_regclass(format('%I._alembic_version', CAST(:schema AS text))) IS NOT NULL
        THEN '_alembic_version'
    WHEN to_regclass(format('%I.alembic_version', CAST(:schema AS text))) IS NOT NULL
        THEN 'alembic_version'
END
