-- name: archived_months
-- The raw months drip-loader archive moved out to files, oldest first (not the ones a
-- stopped run left unfinished: their rows are still in the warehouse).
SELECT month, part, raw_file, raw_events, rejects_file, rejects, archived_at
FROM _archives
WHERE archived_at IS NOT NULL
ORDER BY month, part
