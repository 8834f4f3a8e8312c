-- name: queued
-- What forwarding still has to do (events pending, events marked failed) and whether
-- Segment ever confirmed an event that is still recorded (the partial index of sent rows).
SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       EXISTS (SELECT FROM _outbox WHERE status = 'sent') AS any_sent
FROM _outbox
WHERE status <> 'sent'
