-- name: map_and_insert (tail; follows a head that defines the CTE `src`)
-- A template (string.Template): loader.mapping fills it in from loader.registry for the
-- collections that are on, so the statement holds only their INSERTs.
-- `src` holds the events to map: (_event_key, event, occurred_at, received_at, payload).
-- Maps them per spec §2, §3, §5 and §9 and writes tracks and each collection table.  Every
-- event reaches here exactly once (the head either just landed it, or claimed it from the
-- queue it was put on when it landed, or is the backfill of a collection just turned on),
-- so plain INSERTs: a duplicate id would mean the warehouse was edited by hand, and
-- failing loudly beats skipping silently.  The one exception: an event new to
-- _raw_events that has its rows already, because its raw was archived and is loaded back
-- (drip-loader archive), or its rows came without raw; it is skipped (`fields`), and its
-- rows stay as they are (nor is it queued for Segment again).  One statement, so the
-- counts of every table come back together.  The event map of the collections that are
-- on is bound as arrays.
event_map (drip_event, slug, event_text) AS (
    SELECT * FROM unnest(CAST(:drip_events AS text[]), CAST(:slugs AS text[]), CAST(:names AS text[]))
), fields AS (
    SELECT s._event_key AS id, s.event AS drip_event, s.occurred_at, s.received_at, m.slug, m.event_text,
           s.payload -> 'data' ->> 'account_id' AS account_id,
           s.payload -> 'data' -> 'subscriber' AS sub,
           coalesce(s.payload -> 'data' -> 'properties', '{}') AS p,
           nullif(btrim(s.payload -> 'data' -> 'subscriber' ->> 'user_id', E' \t\n\r\f\v'), '') AS user_id,
           nullif(s.payload -> 'data' -> 'subscriber' ->> 'email', '') AS email
    FROM src s
    JOIN event_map m ON m.drip_event = s.event
    -- one probe of tracks' key (timestamp, id) per event, in its month's partition only
    -- (a LATERAL with LIMIT is never made a join the planner could hash over every month)
    LEFT JOIN LATERAL (
        SELECT true AS mapped FROM tracks t
        WHERE t."timestamp" = s.occurred_at AND t.id = s._event_key
        LIMIT 1
    ) AS known ON true
    WHERE known.mapped IS NULL
), mapped AS MATERIALIZED (
    SELECT id, occurred_at, received_at, slug AS event, event_text, user_id, email, account_id,
           CASE WHEN user_id IS NULL THEN coalesce(email, 'drip:' || (sub ->> 'id')) END AS anonymous_id,
           sub ->> 'id' AS subscriber_id,
           $context_ip AS context_ip,
           $context_user_agent AS context_user_agent$properties
    FROM fields
), add_tracks AS (
    INSERT INTO tracks (id, anonymous_id, user_id, event, event_text, original_timestamp, timestamp,
                        received_at, sent_at, context_library_name, context_library_version,
                        context_integration_name, context_integration_version, context_traits_email,
                        context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id)
    SELECT id, anonymous_id, user_id, event, event_text, occurred_at, occurred_at,
           received_at, received_at, 'drip-loader', :library_version, 'drip', '1.0.0', email,
           context_ip, context_user_agent, account_id, subscriber_id
    FROM mapped
    RETURNING 1
)$inserts, add_outbox AS (
    -- Queue every event for forwarding to Segment (loader.emit), once forwarding is
    -- on (the first emit turns it on and queues the history: loader.emit.enable_forwarding).
    -- Until then an outbox nobody reads would grow by a row per event and cost every load.
    -- While it is off (emit --off) events received before the off are still queued, those
    -- received since are not: emit --on queues them by that one boundary (emit/reenable.sql).
    -- DO NOTHING: what Segment already accepted stays sent.
    -- :queue_outbox is false for a rebuild: it maps again events that were queued (or not,
    -- forwarding being off then) when first mapped, and Segment's confirmation of those may
    -- be gone from _outbox (retention): queueing them again would send them twice.
    INSERT INTO _outbox (id, "timestamp")
    SELECT m.id, m.occurred_at FROM mapped m
    JOIN _forwarding f ON (f.off_since IS NULL OR m.received_at < f.off_since) AND :queue_outbox
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
)$queue_subscribers
SELECT (SELECT count(*) FROM src) AS events,
       (SELECT count(*) FROM add_tracks) AS tracks,$counts
       (SELECT count(*) FROM add_outbox) AS outbox
