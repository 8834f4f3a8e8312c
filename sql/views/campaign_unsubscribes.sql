-- name: campaign_unsubscribes (view)
-- One row per campaign_id for campaign-scoped unsubscribes, plus one row with a NULL
-- campaign_id for unsubscribe-from-all.  A campaign-scoped unsubscribe without a
-- campaign_id belongs to neither, so it is left out (it stays in email_unsubscribed).
SELECT campaign_id,
       (array_agg(campaign_name ORDER BY "timestamp" DESC, id DESC)
           FILTER (WHERE campaign_name IS NOT NULL))[1] AS campaign_name,
       count(DISTINCT coalesce(user_id, anonymous_id)) AS unsubscribes,
       min("timestamp") AS first_at,
       max("timestamp") AS last_at
FROM email_unsubscribed
WHERE (unsubscribe_scope = 'campaign' AND campaign_id IS NOT NULL) OR unsubscribe_scope = 'all'
GROUP BY campaign_id
