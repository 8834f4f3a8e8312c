-- name: partition_months
-- Every partition of the time-partitioned tables :tables of :schema, with its table: the
-- months the warehouse has storage for.
SELECT p.relname AS "table", c.relname AS "partition"
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
JOIN pg_catalog.pg_namespace n ON n.oid = p.relnamespace
WHERE n.nspname = :schema
  AND p.relkind = 'p'
  AND p.relname = ANY (CAST(:tables AS text[]))
ORDER BY 1, 2
