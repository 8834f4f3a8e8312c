-- name: daily_email_activity (view)
-- One row per UTC day and email event slug (from tracks, which holds every event of the
-- collections that are on; the opt-in collections of spec §9 are left out, so the view
-- keeps its meaning when they are turned on): how many events, and how many distinct
-- people (user_id, else anonymous_id).  The list is loader.registry's email collections
-- (a test checks it).
SELECT CAST(timezone('UTC', "timestamp") AS date) AS day,
       event,
       count(*) AS events,
       count(DISTINCT coalesce(user_id, anonymous_id)) AS unique_people
FROM tracks
WHERE event IN ('email_delivered', 'email_opened', 'email_link_clicked', 'email_unsubscribed',
                'email_bounced', 'email_marked_as_spam')
GROUP BY 1, 2
