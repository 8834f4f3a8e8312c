-- name: stage (template, filled in by loader.pipeline.import_plan)
-- The rows this run copies from one Segment table, converted to our columns ($values) and
-- numbered in (timestamp, id) order: one sequential read and one sort of the source,
-- however many batches follow (the source has no index on its time, is never changed, and
-- years of history are rarely in memory: a read by key per row would be a random read per
-- row).  A temporary table: no WAL, gone with the session; a killed run stages again from
-- the last key its ledger row recorded.  _bad: the column whose value cannot land, if any.
-- lacks_tracks: a collection row whose id Segment's tracks does not have ($tracks_join: one
-- hash join here rather than a probe of our tracks per row copied): its tracks row is made
-- with it.
CREATE TEMPORARY TABLE _import_rows AS
SELECT row_number() OVER (ORDER BY v."timestamp", v.id COLLATE "C") AS n, v.*
FROM (
    SELECT $values,
           $bad AS _bad,
           $lacks_tracks AS lacks_tracks
    FROM $source s$tracks_join
    JOIN unnest(CAST(:events AS text[]), CAST(:cutoffs AS timestamptz[])) AS c (event, cutoff)
        ON $event_match
    WHERE $to_copy
) v
