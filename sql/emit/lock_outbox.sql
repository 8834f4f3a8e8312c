-- name: lock_outbox
-- Turning forwarding off: wait for the emitters holding a claim to record what Segment
-- answered, and keep new claims and new queueing out until this transaction commits, so
-- "was anything ever sent" cannot change while it is decided.  Taken after
-- lock_tracks.sql (the order every writer of both follows: tracks, then _outbox).
LOCK TABLE _outbox IN EXCLUSIVE MODE
