-- name: existing_partitions
-- Which of the partitions :names (of the time-partitioned tables of :schema) exist and are
-- attached to their table.  Partitions are named <table>_pYYYYMM (loader.warehouse.partitions).
SELECT c.relname
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
JOIN pg_catalog.pg_namespace n ON n.oid = p.relnamespace
WHERE n.nspname = :schema
  AND p.relkind = 'p'
  AND c.relname = ANY (CAST(:names AS text[]))
