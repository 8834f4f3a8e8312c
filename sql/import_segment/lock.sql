-- name: import_lock
-- One import-segment per warehouse schema at a time (session level: released when the
-- connection ends, so a killed run never leaves it taken).  Other commands never take it.
SELECT pg_try_advisory_lock(hashtext('drip-loader:import-segment:' || :schema))
