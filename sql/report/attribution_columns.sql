-- name: attribution_columns
-- The columns of :schema.:table (a table or a view) and their type category (N numeric,
-- D date/time, S string, ...): how the attribution report checks its --conversions table
-- and the identifies table beside it.
SELECT a.attname AS name,
       t.typcategory AS category
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE n.nspname = :schema
  AND c.relname = :table
  AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
  AND a.attnum > 0
  AND NOT a.attisdropped
ORDER BY a.attnum
