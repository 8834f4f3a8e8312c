-- name: lock_month (a template: $partition is the quoted month partition of _raw_events)
-- Keep new raw events out of the month until the drop commits (landings of other months go
-- on): the count then compared with the file cannot change under it.
LOCK TABLE $partition IN SHARE MODE
