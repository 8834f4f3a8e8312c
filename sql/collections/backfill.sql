-- name: backfill (head; the tail is transform/map_and_insert.sql over the collections just
-- turned on, without queueing subscriber snapshots: their events queued them when landed)
-- The landed events of the Drip events :drip_events that the transform has already passed
-- over: not still queued in _pending (the transform maps those, now that their collection
-- is on), and not already in tracks (a collection turned off and on again kept its rows).
-- Runs under collections/lock_exclusive.sql, so no mapping transaction is in flight.
WITH src AS (
    SELECT r._event_key, r.event, r.occurred_at, r.received_at, r.payload
    FROM _raw_events r
    WHERE r.event = ANY (CAST(:drip_events AS text[]))
      AND NOT EXISTS (SELECT FROM _pending q WHERE q._event_key = r._event_key)
      AND NOT EXISTS (SELECT FROM tracks t WHERE t."timestamp" = r.occurred_at AND t.id = r._event_key)
),
