-- name: lock_tracks
-- Turning forwarding on: wait for the transforms writing tracks to commit, and hold new ones
-- until this transaction commits.  A transform's statement takes its snapshot after its
-- table locks, so it either committed before the backfill below reads tracks, or it sees
-- _forwarding and queues its own events: no event falls between the two.
LOCK TABLE tracks IN SHARE MODE
