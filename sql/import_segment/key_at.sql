-- name: key_at
-- The key numbered :n: the last one of a batch, recorded in the ledger.
SELECT ts, id FROM _import_keys WHERE n = :n
