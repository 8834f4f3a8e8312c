-- name: subscribers_webhook_and_api (view)
-- Every subscriber either source knows, one row per Drip subscriber id, both states side by
-- side: webhook_* is the snapshot of its latest webhook event (table subscribers), api_* is
-- what the last `drip-loader drip sync` read from Drip's API (table drip_subscribers).
-- Neither hides the other: a subscriber who never had an event has only api_* values, one
-- that Drip deleted keeps its webhook_* values and api_deleted_at.
SELECT coalesce(a.id, w.id) AS id,
       w.id IS NOT NULL AS in_webhooks,
       a.id IS NOT NULL AND a.deleted_at IS NULL AS in_api,
       w.email AS webhook_email,
       w.status AS webhook_status,
       w.tags AS webhook_tags,
       w.custom_fields AS webhook_custom_fields,
       w.lead_score AS webhook_lead_score,
       w.lifetime_value AS webhook_lifetime_value,
       w.first_seen_at AS webhook_first_seen_at,
       w.last_seen_at AS webhook_last_seen_at,
       a.email AS api_email,
       a.status AS api_status,
       a.tags AS api_tags,
       a.custom_fields AS api_custom_fields,
       a.lead_score AS api_lead_score,
       a.lifetime_value AS api_lifetime_value,
       a.created_at AS api_created_at,
       a.synced_at AS api_synced_at,
       a.deleted_at AS api_deleted_at
FROM drip_subscribers a
FULL JOIN subscribers w ON w.id = a.id
