-- name: import_subscribers_seen (a branch of import_segment/subscribers.sql, one per email
-- collection: $table a quoted identifier)
-- Rows with ids other than drip-loader's (drip-...) are the ones copied from Segment.
SELECT lower(btrim(context_traits_email)), btrim(context_traits_email), user_id, "timestamp", id
FROM $table
WHERE id NOT LIKE 'drip-%' AND btrim(context_traits_email) <> ''
