-- name: unfinished
-- Ledger rows of archive runs that stopped before dropping their month (archived_at NULL):
-- the next run finishes them, with the same part number and files.
SELECT month, part, raw_file, rejects_file FROM _archives WHERE archived_at IS NULL
