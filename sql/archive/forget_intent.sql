-- name: forget_intent
-- An unfinished ledger row whose month has nothing left to archive.
DELETE FROM _archives WHERE month = :month AND part = :part AND archived_at IS NULL
