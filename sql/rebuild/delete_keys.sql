-- name: delete_keys (a template: $table is tracks or the quoted table of a collection that is on)
-- Rebuild of a month that keeps rows without raw: delete the rows of the batch's raw
-- events (as head.sql picks them) of the collections that are on (:slugs), which the batch
-- then maps again.  Rows whose raw event is gone, and rows of collections that are off,
-- stay as they are.
DELETE FROM $table x
USING _raw_events r
WHERE r.occurred_at >= CAST(:low AS timestamptz) AND r.occurred_at < CAST(:high AS timestamptz)
  AND (r.occurred_at, r._event_key) > (CAST(:after_time AS timestamptz), CAST(:after_key AS text))
  AND (r.occurred_at, r._event_key) <= (CAST(:upto_time AS timestamptz), CAST(:upto_key AS text))
  AND NOT EXISTS (
      SELECT FROM _pending q WHERE q.occurred_at = r.occurred_at AND q._event_key = r._event_key
  )
  AND x."timestamp" >= CAST(:low AS timestamptz) AND x."timestamp" < CAST(:high AS timestamptz)
  AND x."timestamp" = r.occurred_at AND x.id = r._event_key
  AND x.event = ANY (CAST(:slugs AS text[]))
