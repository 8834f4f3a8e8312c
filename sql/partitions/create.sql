-- name: create_partition
-- A template (string.Template) filled in by loader.warehouse.partitions: $partition and
-- $parent are quoted, schema-qualified names.  The month's table is made on its own first,
-- with its table's columns, and attached next (attach.sql): CREATE TABLE ... PARTITION OF
-- would lock the parent against every reader and writer, while attaching only keeps
-- other schema changes out.
CREATE TABLE $partition (LIKE $parent INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION)
