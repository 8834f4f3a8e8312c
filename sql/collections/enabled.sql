-- name: enabled_collections
-- The collections the transform maps.
SELECT name FROM _collections WHERE enabled
