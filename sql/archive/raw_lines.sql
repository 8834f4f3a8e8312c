-- name: raw_lines
-- The raw events of the month [:low, :high), each as its stored body (one JSON text, no
-- line break: jsonb escapes control characters), in time order: the lines of the month's
-- raw file, which `drip-loader load` reads back.
SELECT payload::text
FROM _raw_events
WHERE occurred_at >= CAST(:low AS timestamptz) AND occurred_at < CAST(:high AS timestamptz)
ORDER BY occurred_at, _event_key
