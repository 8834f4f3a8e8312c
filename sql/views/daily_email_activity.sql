-- name: daily_email_activity (view)
-- One row per UTC day and event slug (from tracks, which holds every event of the six
-- collections): how many events, and how many distinct people (user_id, else anonymous_id).
SELECT CAST(timezone('UTC', "timestamp") AS date) AS day,
       event,
       count(*) AS events,
       count(DISTINCT coalesce(user_id, anonymous_id)) AS unique_people
FROM tracks
GROUP BY 1, 2
