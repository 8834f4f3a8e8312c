-- name: keys_index
-- Each batch takes a range of the numbered keys; a temporary table is never analysed by
-- autovacuum, and the batch's join to the Segment table is planned from these statistics.
CREATE UNIQUE INDEX ON _import_keys (n);
ANALYZE _import_keys
