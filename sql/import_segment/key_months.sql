-- name: key_months
-- The months (UTC) of the staged rows numbered (:done, :high]: the partitions a batch
-- writes to.
SELECT DISTINCT date_trunc('month', "timestamp", 'UTC') FROM _import_rows
WHERE n > :done AND n <= :high
