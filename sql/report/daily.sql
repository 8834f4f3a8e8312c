-- name: report_daily
-- The daily_email_activity view, UTC days overlapping [:since, :until) (NULL: unbounded).
SELECT *
FROM daily_email_activity
WHERE (CAST(:since AS timestamptz) IS NULL
       OR timezone('UTC', CAST(day AS timestamp)) + interval '1 day' > CAST(:since AS timestamptz))
  AND (CAST(:until AS timestamptz) IS NULL
       OR timezone('UTC', CAST(day AS timestamp)) < CAST(:until AS timestamptz))
ORDER BY day, event
