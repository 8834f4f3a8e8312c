-- name: foreign_relations
-- Which of the relations a migration would create (:names) already exist in schema :schema.
-- Asked only of a schema with no version table: whatever is found there, drip-loader did not
-- make (a Segment-made schema, most likely).
SELECT c.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :schema
  AND c.relname = ANY (CAST(:names AS text[]))
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY c.relname
