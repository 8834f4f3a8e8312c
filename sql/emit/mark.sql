-- name: mark_outbox
-- Record what happened to each event of a claim, in one statement: 'sent' (Segment
-- accepted it; never sent again), 'failed' (Segment can never accept it as it is, e.g.
-- over 32 KB; only --retry-failed sends it again) or 'pending' (a transient error: the
-- next run retries it, same messageId).  The sent ids, nearly all of them, come as one
-- newline-separated text: Postgres splits one value far faster than it parses an
-- ARRAY[...] of thousands of parameters.
UPDATE _outbox o
SET status = v.status,
    attempts = o.attempts + 1,
    last_error = v.error,
    attempted_at = now(),
    sent_at = CASE WHEN v.status = 'sent' THEN now() END
FROM (
    SELECT s.id, 'sent' AS status, NULL AS error
    FROM unnest(string_to_array(:sent, E'\n')) AS s (id)
    UNION ALL
    SELECT u.id, u.status, u.error
    FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[]), CAST(:errors AS text[])) AS u (id, status, error)
) AS v
WHERE o.id = v.id
