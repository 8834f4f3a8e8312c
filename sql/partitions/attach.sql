-- name: attach_partition
-- A template (string.Template): $parent and $partition are quoted, schema-qualified names,
-- $low and $high quoted timestamptz literals, the first instants of the month and of the
-- next one, in UTC.  Attaching takes SHARE UPDATE EXCLUSIVE on the parent: loads, serve
-- and readers go on meanwhile.  The table is empty, so checking its rows against the
-- bounds and building its indexes (those of the parent) is instant.
ALTER TABLE $parent ATTACH PARTITION $partition FOR VALUES FROM ($low) TO ($high)
