-- name: key_months
-- The months (UTC) of the keys numbered (:done, :high]: the partitions a batch writes to.
SELECT DISTINCT date_trunc('month', ts, 'UTC') FROM _import_keys WHERE n > :done AND n <= :high
