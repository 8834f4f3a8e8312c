-- name: rebuild (head; the tail is transform/map_and_insert.sql, without queueing for Segment)
-- The raw events of one batch of a month: keys in ((:after_time, :after_key),
-- (:upto_time, :upto_key)], except those still queued in _pending (the transform maps
-- those; a claim in flight shows as still queued, so it maps them, not this).  An event
-- whose rows a concurrent load wrote meanwhile is skipped by the tail's probe of tracks.
WITH src AS (
    SELECT r._event_key, r.event, r.occurred_at, r.received_at, r.payload
    FROM _raw_events r
    WHERE r.occurred_at >= CAST(:low AS timestamptz) AND r.occurred_at < CAST(:high AS timestamptz)
      AND (r.occurred_at, r._event_key) > (CAST(:after_time AS timestamptz), CAST(:after_key AS text))
      AND (r.occurred_at, r._event_key) <= (CAST(:upto_time AS timestamptz), CAST(:upto_key AS text))
      AND NOT EXISTS (
          SELECT FROM _pending q WHERE q.occurred_at = r.occurred_at AND q._event_key = r._event_key
      )
),
