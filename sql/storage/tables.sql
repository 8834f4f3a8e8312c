-- name: storage_tables
-- Every table of :schema (a partitioned one once, not each partition) and the bytes it
-- takes on disk all-in: the heap, TOAST and every index, summed over the partitions of a
-- partitioned table (pg_partition_tree lists nothing for a plain one).
SELECT c.relname AS name, c.relkind = 'p' AS partitioned,
       CASE WHEN c.relkind = 'p'
            THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)
                  FROM pg_partition_tree(c.oid) t)
            ELSE pg_total_relation_size(c.oid)
       END AS bytes
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :schema
  AND c.relkind IN ('r', 'p')
  AND NOT c.relispartition
ORDER BY c.relname
