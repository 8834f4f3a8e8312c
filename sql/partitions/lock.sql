-- name: lock_partitions
-- Taken (to the end of the transaction) by whoever creates partitions in :schema: loaders
-- and serve that meet the same new month at once create its partitions once, and the
-- second finds them made.
SELECT pg_advisory_xact_lock(hashtext('drip-loader:partitions:' || :schema))
