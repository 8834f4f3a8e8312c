-- name: lock_collections_shared
-- Taken by every transaction that maps events, before it reads which collections are on
-- (collections/enabled.sql), and held to its commit.  Turning a collection on takes the
-- lock exclusively (collections/lock_exclusive.sql): it waits for the mapping transactions
-- in flight to commit, so its backfill sees their events, and holds new ones until it
-- commits, so they see the collection on.  No event falls between the two.  Mapping
-- transactions do not block each other, nor plain reads of _collections (status, list).
LOCK TABLE _collections IN ROW SHARE MODE
