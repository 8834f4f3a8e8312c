-- name: storage_rows
-- The rows of table $table per partition (a plain table: one row, its own name): one scan,
-- counted by tableoid before the names are looked up.  A template (string.Template):
-- $table is a quoted identifier of a table of the warehouse schema.
SELECT c.relname AS "partition", x.n AS "rows"
FROM (SELECT tableoid, count(*) AS n FROM $table GROUP BY tableoid) x
JOIN pg_catalog.pg_class c ON c.oid = x.tableoid
