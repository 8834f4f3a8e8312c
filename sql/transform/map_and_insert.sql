-- name: map_and_insert (tail; follows a head that defines the CTE `src`)
-- A template (string.Template): loader.mapping fills it in from loader.registry for the
-- collections that are on, so the statement holds only their INSERTs.
-- `src` holds the events to map: (_event_key, event, occurred_at, received_at, payload).
-- Maps them per spec §2, §3, §5 and §9 and writes tracks and each collection table.  Every
-- event reaches here exactly once (the head either just landed it, or claimed it from the
-- queue it was put on when it landed, or is the backfill of a collection just turned on),
-- so plain INSERTs: a duplicate id would mean the warehouse was edited by hand, and
-- failing loudly beats skipping silently.  One statement, so the counts of every table
-- come back together.  The event map of the collections that are on is bound as arrays.
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
    -- DO NOTHING: a rebuild maps events again, and what Segment already accepted stays sent.
    INSERT INTO _outbox (id, "timestamp")
    SELECT id, occurred_at FROM mapped
    WHERE EXISTS (SELECT FROM _forwarding)
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
)$queue_subscribers
SELECT (SELECT count(*) FROM src) AS events,
       (SELECT count(*) FROM add_tracks) AS tracks,$counts
       (SELECT count(*) FROM add_outbox) AS outbox
