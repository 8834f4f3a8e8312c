-- name: import_unlock
SELECT pg_advisory_unlock(hashtext('drip-loader:import-segment:' || :schema))
