-- name: insert_events
-- Write the batch's email events into tracks and their collection table, once per id
-- (ON CONFLICT: a replay or a concurrent transform adds nothing).  One statement, so the
-- counts of every table come back together.
WITH add_tracks AS (
    INSERT INTO tracks (id, anonymous_id, user_id, event, event_text, original_timestamp, timestamp,
                        received_at, sent_at, context_library_name, context_library_version,
                        context_integration_name, context_integration_version, context_traits_email,
                        context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id)
    SELECT id, anonymous_id, user_id, event, event_text, occurred_at, occurred_at,
           received_at, received_at, context_library_name, context_library_version,
           context_integration_name, context_integration_version, context_traits_email,
           context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id
    FROM _batch WHERE event IS NOT NULL
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
), add_email_delivered AS (
    INSERT INTO email_delivered (id, anonymous_id, user_id, event, event_text, original_timestamp, timestamp,
                        received_at, sent_at, context_library_name, context_library_version,
                        context_integration_name, context_integration_version, context_traits_email,
                        context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id,
                        email_id, email_subject, delivery_id)
    SELECT id, anonymous_id, user_id, event, event_text, occurred_at, occurred_at,
           received_at, received_at, context_library_name, context_library_version,
           context_integration_name, context_integration_version, context_traits_email,
           context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id,
           email_id, email_subject, delivery_id
    FROM _batch WHERE event = 'email_delivered'
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
), add_email_opened AS (
    INSERT INTO email_opened (id, anonymous_id, user_id, event, event_text, original_timestamp, timestamp,
                        received_at, sent_at, context_library_name, context_library_version,
                        context_integration_name, context_integration_version, context_traits_email,
                        context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id,
                        email_id, email_subject, delivery_id)
    SELECT id, anonymous_id, user_id, event, event_text, occurred_at, occurred_at,
           received_at, received_at, context_library_name, context_library_version,
           context_integration_name, context_integration_version, context_traits_email,
           context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id,
           email_id, email_subject, delivery_id
    FROM _batch WHERE event = 'email_opened'
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
), add_email_link_clicked AS (
    INSERT INTO email_link_clicked (id, anonymous_id, user_id, event, event_text, original_timestamp, timestamp,
                        received_at, sent_at, context_library_name, context_library_version,
                        context_integration_name, context_integration_version, context_traits_email,
                        context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id,
                        email_id, email_subject, delivery_id, link_url)
    SELECT id, anonymous_id, user_id, event, event_text, occurred_at, occurred_at,
           received_at, received_at, context_library_name, context_library_version,
           context_integration_name, context_integration_version, context_traits_email,
           context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id,
           email_id, email_subject, delivery_id, link_url
    FROM _batch WHERE event = 'email_link_clicked'
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
), add_email_unsubscribed AS (
    INSERT INTO email_unsubscribed (id, anonymous_id, user_id, event, event_text, original_timestamp, timestamp,
                        received_at, sent_at, context_library_name, context_library_version,
                        context_integration_name, context_integration_version, context_traits_email,
                        context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id,
                        campaign_id, campaign_name, unsubscribe_scope)
    SELECT id, anonymous_id, user_id, event, event_text, occurred_at, occurred_at,
           received_at, received_at, context_library_name, context_library_version,
           context_integration_name, context_integration_version, context_traits_email,
           context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id,
           CASE WHEN unsubscribe_scope = 'campaign' THEN campaign_id END,
           CASE WHEN unsubscribe_scope = 'campaign' THEN campaign_name END,
           unsubscribe_scope
    FROM _batch WHERE event = 'email_unsubscribed'
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
), add_email_bounced AS (
    INSERT INTO email_bounced (id, anonymous_id, user_id, event, event_text, original_timestamp, timestamp,
                        received_at, sent_at, context_library_name, context_library_version,
                        context_integration_name, context_integration_version, context_traits_email,
                        context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id,
                        email_id, email_subject, delivery_id)
    SELECT id, anonymous_id, user_id, event, event_text, occurred_at, occurred_at,
           received_at, received_at, context_library_name, context_library_version,
           context_integration_name, context_integration_version, context_traits_email,
           context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id,
           email_id, email_subject, delivery_id
    FROM _batch WHERE event = 'email_bounced'
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
), add_email_marked_as_spam AS (
    INSERT INTO email_marked_as_spam (id, anonymous_id, user_id, event, event_text, original_timestamp, timestamp,
                        received_at, sent_at, context_library_name, context_library_version,
                        context_integration_name, context_integration_version, context_traits_email,
                        context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id,
                        email_id, email_subject, delivery_id)
    SELECT id, anonymous_id, user_id, event, event_text, occurred_at, occurred_at,
           received_at, received_at, context_library_name, context_library_version,
           context_integration_name, context_integration_version, context_traits_email,
           context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id,
           email_id, email_subject, delivery_id
    FROM _batch WHERE event = 'email_marked_as_spam'
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM add_tracks)               AS tracks,
       (SELECT count(*) FROM add_email_delivered)      AS email_delivered,
       (SELECT count(*) FROM add_email_opened)         AS email_opened,
       (SELECT count(*) FROM add_email_link_clicked)   AS email_link_clicked,
       (SELECT count(*) FROM add_email_unsubscribed)   AS email_unsubscribed,
       (SELECT count(*) FROM add_email_bounced)        AS email_bounced,
       (SELECT count(*) FROM add_email_marked_as_spam) AS email_marked_as_spam
