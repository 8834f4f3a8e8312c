-- name: debugger_rejects
-- The newest rejects, from every process that writes to this warehouse (serve replicas,
-- loads), for the debugger page: the reason, where it came from, and the head of its text.
SELECT id, rejected_at, reason, origin, raw_size, left(raw_text, :head) AS head
FROM _rejects
ORDER BY id DESC
LIMIT :limit
