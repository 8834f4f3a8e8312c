-- name: archive_unlock
SELECT pg_advisory_unlock(hashtext('drip-loader:archive:' || :schema))
