-- name: batch_end
-- The key of the last raw event of the next batch of the month [:low, :high): `offset` + 1 events
-- after (:after_time, :after_key) in key order (none: the rest of the month is the batch).
SELECT occurred_at, _event_key
FROM _raw_events
WHERE occurred_at >= CAST(:low AS timestamptz) AND occurred_at < CAST(:high AS timestamptz)
  AND (occurred_at, _event_key) > (CAST(:after_time AS timestamptz), CAST(:after_key AS text))
ORDER BY occurred_at, _event_key
OFFSET :offset LIMIT 1
