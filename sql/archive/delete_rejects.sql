-- name: delete_rejects
-- The rejects of the month [:low, :high) leave the warehouse: their file is checked.
DELETE FROM _rejects
WHERE rejected_at >= CAST(:low AS timestamptz) AND rejected_at < CAST(:high AS timestamptz)
