-- name: forwarding_state
-- Whether forwarding to Segment was ever turned on (a row), whether it is off now
-- (off_since), and how many sent rows retention has deleted.  No row: never turned on.
SELECT off_since, pruned_sent FROM _forwarding
