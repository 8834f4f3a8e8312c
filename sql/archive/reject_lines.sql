-- name: reject_lines
-- The rejects of the month [:low, :high) (by rejected_at): the lines of its rejects file.
SELECT rejected_at, reason, origin, _load_id, raw_size, raw_sha256, raw_text, raw_bytes
FROM _rejects
WHERE rejected_at >= CAST(:low AS timestamptz) AND rejected_at < CAST(:high AS timestamptz)
ORDER BY id
