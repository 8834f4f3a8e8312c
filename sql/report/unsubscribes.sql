-- name: report_unsubscribes
-- The campaign_unsubscribes view, campaigns with unsubscribes in [:since, :until) (NULL:
-- unbounded); figures are all time.  Unsubscribe-from-all (no campaign) comes last.
SELECT *
FROM campaign_unsubscribes
WHERE (CAST(:since AS timestamptz) IS NULL OR last_at >= CAST(:since AS timestamptz))
  AND (CAST(:until AS timestamptz) IS NULL OR first_at < CAST(:until AS timestamptz))
ORDER BY campaign_id NULLS LAST
