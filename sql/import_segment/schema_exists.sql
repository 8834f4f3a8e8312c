-- name: schema_exists
SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = :schema)
