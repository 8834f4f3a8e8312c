-- name: collection_settings
-- Every collection's setting, for `drip-loader collections list`.
SELECT name, enabled, changed_at FROM _collections
