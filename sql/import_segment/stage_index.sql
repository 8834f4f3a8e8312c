-- name: stage_index
-- Each batch takes a range of the numbered rows; a temporary table is never analysed by
-- autovacuum.
CREATE UNIQUE INDEX ON _import_rows (n);
ANALYZE _import_rows
