-- name: import_subscribers (template: $seen is one SELECT per email collection, joined by
-- UNION ALL, filled in by loader.pipeline.import_segment)
-- The subscribers dimension for history copied from Segment.  Segment's rows carry no Drip
-- subscriber id, only the email (context_traits_email), so a person known only from that
-- history gets a row keyed 'email:' || the address in lower case (mixed-case spellings are
-- one person): the spelling, and the user id, of its latest event; first_seen_at and
-- last_seen_at over its events.  Never where a real snapshot (a row keyed by Drip's id, from
-- an event drip-loader received) has that email: such a row is the person, and an email
-- row made before it arrived is removed (transform/merge_subscribers.sql does the same when
-- the snapshot arrives later).  Computed from every imported row each run, so it is the
-- same after one run or several, and a row is only written when it changes.
WITH seen (key, email, user_id, "timestamp", id) AS (
$seen
), known AS (
    SELECT key,
           (array_agg(email ORDER BY "timestamp" DESC, id DESC))[1] AS email,
           (array_agg(user_id ORDER BY "timestamp" DESC, id DESC)
               FILTER (WHERE user_id IS NOT NULL))[1] AS user_id,
           min("timestamp") AS first_seen_at,
           max("timestamp") AS last_seen_at
    FROM seen
    GROUP BY key
), snapshots AS (
    SELECT DISTINCT lower(btrim(email)) AS key
    FROM subscribers
    WHERE email IS NOT NULL AND id NOT LIKE 'email:%'
), replaced AS (
    DELETE FROM subscribers s
    USING snapshots r
    WHERE s.id = 'email:' || r.key
    RETURNING 1
), written AS (
    INSERT INTO subscribers AS cur (id, email, user_id, first_seen_at, last_seen_at)
    SELECT 'email:' || k.key, k.email, k.user_id, k.first_seen_at, k.last_seen_at
    FROM known k
    WHERE NOT EXISTS (SELECT FROM snapshots r WHERE r.key = k.key)
    ORDER BY 1
    ON CONFLICT (id) DO UPDATE SET
        email = excluded.email,
        user_id = excluded.user_id,
        first_seen_at = excluded.first_seen_at,
        last_seen_at = excluded.last_seen_at
    WHERE (cur.email, cur.user_id, cur.first_seen_at, cur.last_seen_at)
          IS DISTINCT FROM (excluded.email, excluded.user_id, excluded.first_seen_at, excluded.last_seen_at)
    RETURNING xmax = 0 AS inserted
)
SELECT (SELECT count(*) FROM written WHERE inserted) AS added,
       (SELECT count(*) FROM written WHERE NOT inserted) AS updated,
       (SELECT count(*) FROM replaced) AS replaced
