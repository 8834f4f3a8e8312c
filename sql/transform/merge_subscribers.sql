-- name: merge_subscribers
-- Merge up to :limit queued subscriber snapshots (written by map_and_insert.sql) into the
-- subscribers dimension: per Drip subscriber id, the snapshot carried by its latest event
-- (by occurred_at; any of the 29 Drip events).  One DISTINCT ON pass picks each
-- subscriber's latest queued event (ties: the greater event key); the upsert then keeps
-- whichever snapshot is newer, so an old event loaded late never overwrites a newer one,
-- while first_seen_at/last_seen_at still widen.  The merge is commutative, so batches may
-- be taken in any order and by concurrent runs (SKIP LOCKED: each queued row is merged
-- once).  Rows go in id order: concurrent merges lock the same subscribers in the same
-- order and cannot deadlock.  Events whose subscriber has no id (identified by email only)
-- have no row here.  :parts merges may split the queue by subscriber (this one takes
-- part :part): they never touch the same subscriber, so they run side by side on as many
-- cores.  With :refresh (a rebuild) the snapshot of the same latest event is written again
-- too, so a mapping fix reaches subscribers whose latest event is still in _raw_events,
-- while those whose latest event is archived keep their row as it is.  A subscriber known
-- only by email from history copied from Segment (import_segment/subscribers.sql: id
-- 'email:' || lower(email)) is replaced by the snapshot that now has its email.
WITH taken AS (
    DELETE FROM _subscriber_changes
    WHERE ctid = ANY (ARRAY(SELECT ctid FROM _subscriber_changes
                            WHERE :parts = 1 OR (hashtext(id) & 2147483647) % :parts = :part
                            LIMIT :limit FOR UPDATE SKIP LOCKED))
    RETURNING id, occurred_at, _event_key
), latest AS (
    SELECT DISTINCT ON (id) id, occurred_at, _event_key, min(occurred_at) OVER newest_first AS first_seen_at
    FROM taken
    -- the window sorts like DISTINCT ON, so one sort serves both
    WINDOW newest_first AS (PARTITION BY id ORDER BY occurred_at DESC, _event_key DESC
                            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    ORDER BY id, occurred_at DESC, _event_key DESC
), merged AS (
    INSERT INTO subscribers AS cur (id, email, user_id, status, tags, custom_fields, time_zone,
                                    lead_score, lifetime_value, created_at, first_seen_at, last_seen_at)
    SELECT id,
           nullif(sub ->> 'email', ''),
           nullif(btrim(sub ->> 'user_id', E' \t\n\r\f\v'), ''),  -- as tracks.user_id (spec §3)
           sub ->> 'status',
           nullif(sub -> 'tags', 'null'),  -- as sent (an array of names)
           nullif(sub -> 'custom_fields', 'null'),  -- as sent (an object)
           sub ->> 'time_zone',
           -- snapshot fields are not validated at landing: a number of the wrong type is NULL
           CASE WHEN jsonb_typeof(sub -> 'lead_score') = 'number' THEN CAST(sub ->> 'lead_score' AS numeric) END,
           CASE WHEN jsonb_typeof(sub -> 'lifetime_value') = 'number' THEN CAST(sub ->> 'lifetime_value' AS numeric) END,
           _to_timestamptz(sub ->> 'created_at'),
           first_seen_at, occurred_at
    FROM (
        -- only each subscriber's latest event is read back for its snapshot: one probe
        -- of its month's partition (LATERAL with LIMIT: never hashed over every month)
        SELECT l.id, l.occurred_at, l.first_seen_at, r.payload -> 'data' -> 'subscriber' AS sub
        FROM latest l
        CROSS JOIN LATERAL (
            SELECT r.payload FROM _raw_events r
            WHERE r.occurred_at = l.occurred_at AND r._event_key = l._event_key
            LIMIT 1
        ) AS r
    ) newest
    ORDER BY id
    ON CONFLICT (id) DO UPDATE SET
        email          = CASE WHEN (excluded.last_seen_at, CAST(:refresh AS boolean)) > (cur.last_seen_at, false) THEN excluded.email ELSE cur.email END,
        user_id        = CASE WHEN (excluded.last_seen_at, CAST(:refresh AS boolean)) > (cur.last_seen_at, false) THEN excluded.user_id ELSE cur.user_id END,
        status         = CASE WHEN (excluded.last_seen_at, CAST(:refresh AS boolean)) > (cur.last_seen_at, false) THEN excluded.status ELSE cur.status END,
        tags           = CASE WHEN (excluded.last_seen_at, CAST(:refresh AS boolean)) > (cur.last_seen_at, false) THEN excluded.tags ELSE cur.tags END,
        custom_fields  = CASE WHEN (excluded.last_seen_at, CAST(:refresh AS boolean)) > (cur.last_seen_at, false) THEN excluded.custom_fields ELSE cur.custom_fields END,
        time_zone      = CASE WHEN (excluded.last_seen_at, CAST(:refresh AS boolean)) > (cur.last_seen_at, false) THEN excluded.time_zone ELSE cur.time_zone END,
        lead_score     = CASE WHEN (excluded.last_seen_at, CAST(:refresh AS boolean)) > (cur.last_seen_at, false) THEN excluded.lead_score ELSE cur.lead_score END,
        lifetime_value = CASE WHEN (excluded.last_seen_at, CAST(:refresh AS boolean)) > (cur.last_seen_at, false) THEN excluded.lifetime_value ELSE cur.lifetime_value END,
        created_at     = CASE WHEN (excluded.last_seen_at, CAST(:refresh AS boolean)) > (cur.last_seen_at, false) THEN excluded.created_at ELSE cur.created_at END,
        first_seen_at  = least(cur.first_seen_at, excluded.first_seen_at),
        last_seen_at   = greatest(cur.last_seen_at, excluded.last_seen_at)
    -- an event inside the known span changes nothing: no new row version
    WHERE (excluded.last_seen_at, CAST(:refresh AS boolean)) > (cur.last_seen_at, false)
       OR excluded.first_seen_at < cur.first_seen_at
    RETURNING xmax = 0 AS inserted,  -- xmax is 0 on a freshly inserted row, set on an updated one
              email
), replaced AS (
    DELETE FROM subscribers
    WHERE id IN (
        SELECT e.id FROM subscribers e
        WHERE EXISTS (SELECT FROM _imports)  -- no import, no such rows: no probe per subscriber
          AND e.id IN (SELECT 'email:' || lower(btrim(email)) FROM merged)
        -- locked in id order: merges of other parts may replace the same rows
        ORDER BY e.id
        FOR UPDATE
    )
)
SELECT (SELECT count(*) FROM taken) AS taken,
       (SELECT count(*) FROM merged WHERE inserted) AS inserted
