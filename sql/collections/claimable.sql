-- name: claimable_collections
-- The collections whose tables may hold events queued for Segment: on now, or on once
-- (changed_at stays NULL until the setting is first changed; an opt-in collection starts off).
SELECT name FROM _collections WHERE enabled OR changed_at IS NOT NULL
