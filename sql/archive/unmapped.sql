-- name: unmapped
-- Work of the month [:low, :high) that still needs its raw events: events not transformed
-- yet (_pending) and subscriber snapshots not merged yet (_subscriber_changes, whose merge
-- reads the snapshot from the raw event).  Both must be done before the raw goes.
SELECT (SELECT count(*) FROM _pending
        WHERE occurred_at >= CAST(:low AS timestamptz) AND occurred_at < CAST(:high AS timestamptz)) AS pending,
       (SELECT count(*) FROM _subscriber_changes
        WHERE occurred_at >= CAST(:low AS timestamptz) AND occurred_at < CAST(:high AS timestamptz)) AS snapshots
