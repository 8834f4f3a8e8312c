-- name: retry_failed
-- Put events marked failed back in the queue (emit --retry-failed), keeping their last
-- error until the next attempt overwrites it.
UPDATE _outbox SET status = 'pending' WHERE status = 'failed'
