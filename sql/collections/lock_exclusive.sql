-- name: lock_collections_exclusive
-- Changing which collections are on: see collections/lock_shared.sql.
LOCK TABLE _collections IN EXCLUSIVE MODE
