-- name: map_and_insert (tail; follows a head that defines the CTE `src`)
-- `src` holds the events to map: (_event_key, event, occurred_at, received_at, payload).
-- Maps them per spec §2, §3 and §5 and writes tracks and each collection table.  Every
-- event reaches here exactly once (the head either just landed it, or claimed it from the
-- queue it was put on when it landed), so plain INSERTs: a duplicate id would mean the
-- warehouse was edited by hand, and failing loudly beats skipping silently.  One
-- statement, so the counts of every table come back together.  The event map is bound as arrays from
-- loader.events, its single source.
event_map (drip_event, slug, event_text, unsubscribe_scope) AS (
    SELECT * FROM unnest(CAST(:drip_events AS text[]), CAST(:slugs AS text[]),
                         CAST(:names AS text[]), CAST(:scopes AS text[]))
), fields AS (
    SELECT s._event_key AS id, s.occurred_at, s.received_at, m.slug, m.event_text, m.unsubscribe_scope,
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
           CASE WHEN slug = 'email_link_clicked' THEN p ->> 'ip_address' END AS context_ip,
           CASE WHEN slug = 'email_link_clicked' THEN p ->> 'user_agent' END AS context_user_agent,
           p ->> 'email_id' AS email_id,
           p ->> 'email_subject' AS email_subject,
           p ->> 'delivery_id' AS delivery_id,
           CASE WHEN slug = 'email_link_clicked' THEN p ->> 'url' END AS link_url,
           CASE WHEN unsubscribe_scope = 'campaign' THEN p ->> 'campaign_id' END AS campaign_id,
           CASE WHEN unsubscribe_scope = 'campaign' THEN p ->> 'campaign_name' END AS campaign_name,
           unsubscribe_scope
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
), add_email_delivered AS (
    INSERT INTO email_delivered (id, anonymous_id, user_id, event, event_text, original_timestamp, timestamp,
                        received_at, sent_at, context_library_name, context_library_version,
                        context_integration_name, context_integration_version, context_traits_email,
                        context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id,
                        email_id, email_subject, delivery_id)
    SELECT id, anonymous_id, user_id, event, event_text, occurred_at, occurred_at,
           received_at, received_at, 'drip-loader', :library_version, 'drip', '1.0.0', email,
           context_ip, context_user_agent, account_id, subscriber_id,
           email_id, email_subject, delivery_id
    FROM mapped WHERE event = 'email_delivered'
    RETURNING 1
), add_email_opened AS (
    INSERT INTO email_opened (id, anonymous_id, user_id, event, event_text, original_timestamp, timestamp,
                        received_at, sent_at, context_library_name, context_library_version,
                        context_integration_name, context_integration_version, context_traits_email,
                        context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id,
                        email_id, email_subject, delivery_id)
    SELECT id, anonymous_id, user_id, event, event_text, occurred_at, occurred_at,
           received_at, received_at, 'drip-loader', :library_version, 'drip', '1.0.0', email,
           context_ip, context_user_agent, account_id, subscriber_id,
           email_id, email_subject, delivery_id
    FROM mapped WHERE event = 'email_opened'
    RETURNING 1
), add_email_link_clicked AS (
    INSERT INTO email_link_clicked (id, anonymous_id, user_id, event, event_text, original_timestamp, timestamp,
                        received_at, sent_at, context_library_name, context_library_version,
                        context_integration_name, context_integration_version, context_traits_email,
                        context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id,
                        email_id, email_subject, delivery_id, link_url)
    SELECT id, anonymous_id, user_id, event, event_text, occurred_at, occurred_at,
           received_at, received_at, 'drip-loader', :library_version, 'drip', '1.0.0', email,
           context_ip, context_user_agent, account_id, subscriber_id,
           email_id, email_subject, delivery_id, link_url
    FROM mapped WHERE event = 'email_link_clicked'
    RETURNING 1
), add_email_unsubscribed AS (
    INSERT INTO email_unsubscribed (id, anonymous_id, user_id, event, event_text, original_timestamp, timestamp,
                        received_at, sent_at, context_library_name, context_library_version,
                        context_integration_name, context_integration_version, context_traits_email,
                        context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id,
                        campaign_id, campaign_name, unsubscribe_scope)
    SELECT id, anonymous_id, user_id, event, event_text, occurred_at, occurred_at,
           received_at, received_at, 'drip-loader', :library_version, 'drip', '1.0.0', email,
           context_ip, context_user_agent, account_id, subscriber_id,
           campaign_id, campaign_name, unsubscribe_scope
    FROM mapped WHERE event = 'email_unsubscribed'
    RETURNING 1
), add_email_bounced AS (
    INSERT INTO email_bounced (id, anonymous_id, user_id, event, event_text, original_timestamp, timestamp,
                        received_at, sent_at, context_library_name, context_library_version,
                        context_integration_name, context_integration_version, context_traits_email,
                        context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id,
                        email_id, email_subject, delivery_id)
    SELECT id, anonymous_id, user_id, event, event_text, occurred_at, occurred_at,
           received_at, received_at, 'drip-loader', :library_version, 'drip', '1.0.0', email,
           context_ip, context_user_agent, account_id, subscriber_id,
           email_id, email_subject, delivery_id
    FROM mapped WHERE event = 'email_bounced'
    RETURNING 1
), add_email_marked_as_spam AS (
    INSERT INTO email_marked_as_spam (id, anonymous_id, user_id, event, event_text, original_timestamp, timestamp,
                        received_at, sent_at, context_library_name, context_library_version,
                        context_integration_name, context_integration_version, context_traits_email,
                        context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id,
                        email_id, email_subject, delivery_id)
    SELECT id, anonymous_id, user_id, event, event_text, occurred_at, occurred_at,
           received_at, received_at, 'drip-loader', :library_version, 'drip', '1.0.0', email,
           context_ip, context_user_agent, account_id, subscriber_id,
           email_id, email_subject, delivery_id
    FROM mapped WHERE event = 'email_marked_as_spam'
    RETURNING 1
), add_outbox AS (
    -- Queue every email event for forwarding to Segment (loader.emit), once forwarding is
    -- on (the first emit turns it on and queues the history: loader.emit.enable_forwarding).
    -- Until then an outbox nobody reads would grow by a row per event and cost every load.
    -- DO NOTHING: a rebuild maps events again, and what Segment already accepted stays sent.
    INSERT INTO _outbox (id)
    SELECT id FROM mapped
    WHERE EXISTS (SELECT FROM _forwarding)
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
), queue_subscribers AS (
    -- The subscribers dimension is merged per run, not per chunk (transform/merge_subscribers.sql):
    -- a subscriber appears in most chunks of a file, and an upsert per subscriber per chunk
    -- was a third of the database work of a load.  Here each event with a Drip subscriber id
    -- only queues a reference to its snapshot, in an index-free heap, in the same transaction as its rows.
    INSERT INTO _subscriber_changes (id, occurred_at, _event_key)
    SELECT payload -> 'data' -> 'subscriber' ->> 'id', occurred_at, _event_key
    FROM src
    WHERE jsonb_typeof(payload -> 'data' -> 'subscriber' -> 'id') IN ('string', 'number')
      AND payload -> 'data' -> 'subscriber' ->> 'id' <> ''
)
SELECT (SELECT count(*) FROM src) AS events,
       (SELECT count(*) FROM add_tracks) AS tracks,
       (SELECT count(*) FROM add_email_delivered) AS email_delivered,
       (SELECT count(*) FROM add_email_opened) AS email_opened,
       (SELECT count(*) FROM add_email_link_clicked) AS email_link_clicked,
       (SELECT count(*) FROM add_email_unsubscribed) AS email_unsubscribed,
       (SELECT count(*) FROM add_email_bounced) AS email_bounced,
       (SELECT count(*) FROM add_email_marked_as_spam) AS email_marked_as_spam,
       (SELECT count(*) FROM add_outbox) AS outbox
