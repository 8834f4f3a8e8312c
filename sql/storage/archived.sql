-- name: archived_months
-- The raw months drip-loader archive moved out to files, oldest first.
SELECT month, part, raw_file, raw_events, rejects_file, rejects, archived_at
FROM _archives
ORDER BY month, part
