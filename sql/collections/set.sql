-- name: set_collections
-- Turn the collections :names on or off (:enabled); return those whose setting changed.
UPDATE _collections
SET enabled = :enabled, changed_at = now()
WHERE name = ANY (CAST(:names AS text[])) AND enabled <> :enabled
RETURNING name
