-- name: source_columns
-- The columns of the tables :tables of schema :schema (Segment's), in table order, with
-- their type: typname and category of the base type (a domain is read as its base type),
-- and the type as Postgres prints it (for messages).
SELECT c.relname AS table_name,
       a.attname AS column_name,
       base.typname AS type_name,
       base.typcategory AS category,
       format_type(a.atttypid, a.atttypmod) AS type_text
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type base ON base.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE n.nspname = :schema
  AND c.relname = ANY (CAST(:tables AS text[]))
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY c.relname, a.attnum
