-- name: report_email_performance
-- The email_performance view, emails with activity in [:since, :until) (NULL: unbounded);
-- figures are all time.
SELECT *
FROM email_performance
WHERE (CAST(:since AS timestamptz) IS NULL OR last_event_at >= CAST(:since AS timestamptz))
  AND (CAST(:until AS timestamptz) IS NULL OR first_event_at < CAST(:until AS timestamptz))
ORDER BY first_event_at, email_id
