-- name: first_rows (template: $branches is one SELECT per email collection, joined by
-- UNION ALL, filled in by loader.pipeline.import_segment)
-- The earliest event time of the rows drip-loader itself wrote to each email collection:
-- drip- ids, never a row an import copied.  Read with import_segment/first_events.sql, as
-- raw months may be archived (their rows stay) and a collection may be off (its events stay
-- raw): drip-loader has an event if either holds it.
$branches
