-- name: truncate_month (a template: $partitions are the month's quoted partitions of tracks
-- and of the collections that are on)
-- Rebuild of a month whose every row has its raw event and whose collections are all on:
-- empty it at once (no dead rows, no WAL per row) and map it again whole.
TRUNCATE $partitions
