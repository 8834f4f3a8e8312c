-- name: keys (template, filled in by loader.pipeline.import_plan)
-- The keys of the rows this run copies from one Segment table, numbered in (timestamp, id)
-- order: one read and one sort of the source, however many batches follow (the source has
-- no index on its time, and is never changed).  A temporary table: no WAL, gone with the
-- session; a killed run builds it again from the last key its ledger row recorded.
CREATE TEMPORARY TABLE _import_keys AS
SELECT row_number() OVER (ORDER BY k.ts, k.id COLLATE "C") AS n, k.ts, k.id
FROM (
    SELECT $timestamp AS ts, $id AS id
    FROM $source s
    JOIN unnest(CAST(:events AS text[]), CAST(:cutoffs AS timestamptz[])) AS c (event, cutoff)
        ON $event_match
    WHERE $to_copy
) k
