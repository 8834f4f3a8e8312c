-- name: archive_done
-- The month's files are checked and its rows are about to go, in this transaction.
UPDATE _archives
SET raw_file = :raw_file, raw_events = :raw_events, raw_sha256 = :raw_sha256,
    rejects_file = :rejects_file, rejects = :rejects, rejects_sha256 = :rejects_sha256,
    archived_at = now()
WHERE month = :month AND part = :part
