-- name: mark
-- Record one batch of `rejects retry`: :ids are the rejects it re-validated, :reasons why
-- each still fails (NULL: it passed and its event is landed).  Those that passed are
-- marked with this run (:load_id); those still failing get the current reason; the
-- reason a reject was first rejected with is kept in first_reason; every attempt is
-- logged in _reject_retries.
WITH outcome AS (
    SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:reasons AS text[])) AS o (id, reason)
), marked AS (
    UPDATE _rejects r
    SET first_reason = coalesce(r.first_reason, r.reason),
        reason = coalesce(o.reason, r.reason),
        landed_at = CASE WHEN o.reason IS NULL THEN now() END,
        landed_load_id = CASE WHEN o.reason IS NULL THEN CAST(:load_id AS text) END
    FROM outcome o
    WHERE r.id = o.id
)
INSERT INTO _reject_retries (reject_id, load_id, outcome, reason)
SELECT id, :load_id, CASE WHEN reason IS NULL THEN 'landed' ELSE 'rejected' END, reason
FROM outcome
