-- name: first_events
-- The earliest event time drip-loader itself has for each of the Drip events :drip_events
-- in _raw_events, which holds every event drip-loader received (webhook or file) and
-- nothing an import copied, whether or not its collection is on (with
-- import_segment/first_rows.sql: raw months may have been archived).
SELECT event, min(occurred_at) AS first_at
FROM _raw_events
WHERE event = ANY (CAST(:drip_events AS text[]))
GROUP BY event
