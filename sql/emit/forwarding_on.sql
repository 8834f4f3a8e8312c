-- name: forwarding_on
-- Whether forwarding to Segment is on (the mapping statement queues events in _outbox).
SELECT EXISTS (SELECT FROM _forwarding)
