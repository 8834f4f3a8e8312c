-- name: has_raw
-- Whether any raw event of the month [:low, :high) is still in _raw_events (one partition).
SELECT EXISTS (
    SELECT FROM _raw_events
    WHERE occurred_at >= CAST(:low AS timestamptz) AND occurred_at < CAST(:high AS timestamptz)
)
