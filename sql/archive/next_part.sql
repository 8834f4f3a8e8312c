-- name: next_part
-- The part number the next archive of month :month gets: its raw events came back (a load
-- of the archive) or arrived late after an earlier part was archived.
SELECT coalesce(max(part), 0) + 1 FROM _archives WHERE month = :month
