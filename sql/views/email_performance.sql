-- name: email_performance (view)
-- One row per email_id seen in any email table: how the email did, all time.  A recipient
-- is coalesce(delivery_id, user_id, anonymous_id); unique_* count distinct recipients.
-- Rates are NULL when their denominator is 0: many accounts never enable the Email
-- Delivered webhook, so "no deliveries" must not read as a rate of zero.
WITH email_events AS (
    SELECT event, email_id, email_subject, "timestamp", id,
           coalesce(delivery_id, user_id, anonymous_id) AS recipient
    FROM email_delivered
    UNION ALL
    SELECT event, email_id, email_subject, "timestamp", id, coalesce(delivery_id, user_id, anonymous_id)
    FROM email_opened
    UNION ALL
    SELECT event, email_id, email_subject, "timestamp", id, coalesce(delivery_id, user_id, anonymous_id)
    FROM email_link_clicked
    UNION ALL
    SELECT event, email_id, email_subject, "timestamp", id, coalesce(delivery_id, user_id, anonymous_id)
    FROM email_bounced
    UNION ALL
    SELECT event, email_id, email_subject, "timestamp", id, coalesce(delivery_id, user_id, anonymous_id)
    FROM email_marked_as_spam
), per_email AS (
    SELECT email_id,
           -- the latest subject wins (a renamed email shows its current subject); the id
           -- breaks ties between events of the same instant so the choice is stable
           (array_agg(email_subject ORDER BY "timestamp" DESC, id DESC)
               FILTER (WHERE email_subject IS NOT NULL))[1] AS email_subject,
           count(*) FILTER (WHERE event = 'email_delivered') AS delivered,
           count(*) FILTER (WHERE event = 'email_opened') AS opens,
           count(DISTINCT recipient) FILTER (WHERE event = 'email_opened') AS unique_opens,
           count(*) FILTER (WHERE event = 'email_link_clicked') AS clicks,
           count(DISTINCT recipient) FILTER (WHERE event = 'email_link_clicked') AS unique_clicks,
           count(*) FILTER (WHERE event = 'email_bounced') AS bounces,
           count(*) FILTER (WHERE event = 'email_marked_as_spam') AS spam_reports,
           min("timestamp") AS first_event_at,
           max("timestamp") AS last_event_at
    FROM email_events
    WHERE email_id IS NOT NULL
    GROUP BY email_id
)
SELECT email_id, email_subject, delivered, opens, unique_opens, clicks, unique_clicks,
       bounces, spam_reports,
       CAST(unique_opens AS numeric) / nullif(delivered, 0) AS open_rate,
       CAST(unique_clicks AS numeric) / nullif(delivered, 0) AS click_rate,
       CAST(unique_clicks AS numeric) / nullif(unique_opens, 0) AS click_to_open_rate,
       first_event_at, last_event_at
FROM per_email
