-- name: archive_lock
-- One drip-loader archive at a time per schema (a session lock, held for the whole run): two
-- would write the same month's files and compare counts against each other's drops.
SELECT pg_try_advisory_lock(hashtext('drip-loader:archive:' || :schema))
