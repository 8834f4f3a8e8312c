-- name: survey (template, filled in by loader.pipeline.import_plan)
-- One read of a Segment table before anything is copied: its rows (tracks: those of the six
-- email events), how many fall before the cutoff of their event type (:events, :cutoffs), how
-- many of those are after the last key already copied (:last_timestamp, :last_id: what this
-- run copies), and what would stop the copy: a row without an event time, an id in
-- drip-loader's own format, a value that cannot land in its column (the first id of each,
-- $checks).  $extras: non-null values before the cutoff of each column with no counterpart.
SELECT count(*) AS source_rows,
       count(*) FILTER (WHERE $before) AS before_cutoff,
       count(*) FILTER (WHERE $to_copy) AS to_copy,
       min($id COLLATE "C") FILTER (WHERE $timestamp IS NULL) AS no_timestamp,
       min($id COLLATE "C") FILTER (WHERE $to_copy AND $id LIKE 'drip-%') AS drip_id$checks$extras
FROM $source s
JOIN unnest(CAST(:events AS text[]), CAST(:cutoffs AS timestamptz[])) AS c (event, cutoff)
    ON $event_match
