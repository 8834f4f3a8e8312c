-- name: debugger_rejects
-- The newest rejects, from every process that writes to this warehouse (serve replicas,
-- loads), for the debugger page: the reason, where it came from, and the head of its text.
-- One that `rejects retry` has landed is no longer refused: like `rejects list` and
-- `status`, the page leaves it out (its row stays, marked landed).
SELECT id, rejected_at, reason, origin, raw_size, left(raw_text, :head) AS head
FROM _rejects
WHERE landed_at IS NULL
ORDER BY id DESC
LIMIT :limit
