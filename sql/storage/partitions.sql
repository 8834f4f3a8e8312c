-- name: storage_partitions
-- The partitions of the tables :tables of :schema with their bytes all-in (heap, TOAST,
-- indexes); their months are in their names (loader.warehouse.partitions).
SELECT p.relname AS "table", c.relname AS "partition", pg_total_relation_size(c.oid) AS bytes
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
JOIN pg_catalog.pg_namespace n ON n.oid = p.relnamespace
WHERE n.nspname = :schema
  AND p.relname = ANY (CAST(:tables AS text[]))
ORDER BY 1, 2
