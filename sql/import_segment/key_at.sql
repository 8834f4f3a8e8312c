-- name: key_at
-- The key of the staged row numbered :n: the last one of a batch, recorded in the ledger.
SELECT "timestamp" AS ts, id FROM _import_rows WHERE n = :n
