-- name: claim_pending
-- Take up to :batch_size queued events (rows other transforms hold are skipped, never
-- waited for or lost) and map them per spec §2, §3 and §5.  The event map comes in as
-- arrays bound from loader.events, its single source.
WITH claimed AS (
    DELETE FROM _pending
    WHERE ctid = ANY (ARRAY(SELECT ctid FROM _pending LIMIT :batch_size FOR UPDATE SKIP LOCKED))
    RETURNING _event_key
), mapping (drip_event, slug, event_text, unsubscribe_scope) AS (
    SELECT * FROM unnest(CAST(:drip_events AS text[]), CAST(:slugs AS text[]),
                         CAST(:names AS text[]), CAST(:scopes AS text[]))
), fields AS (
    SELECT DISTINCT ON (r._event_key)
           r._event_key, r.event AS drip_event, r.occurred_at, r.received_at,
           r.payload -> 'data' ->> 'account_id' AS account_id,
           r.payload -> 'data' -> 'subscriber' AS s,
           coalesce(r.payload -> 'data' -> 'properties', '{}') AS p
    FROM claimed c
    JOIN _raw_events r ON r._event_key = c._event_key
), identity AS (
    SELECT f.*,
           nullif(btrim(f.s ->> 'user_id', E' \t\n\r\f\v'), '') AS user_id,
           nullif(f.s ->> 'email', '') AS email
    FROM fields f
)
INSERT INTO _batch
SELECT i._event_key,
       i.drip_event,
       m.slug,
       m.event_text,
       m.unsubscribe_scope,
       CASE WHEN i.user_id IS NULL THEN coalesce(i.email, 'drip:' || (i.s ->> 'id')) END,
       i.user_id,
       i.occurred_at,
       i.received_at,
       'drip-loader',
       :library_version,
       'drip',
       '1.0.0',
       i.email,
       CASE WHEN m.slug = 'email_link_clicked' THEN i.p ->> 'ip_address' END,
       CASE WHEN m.slug = 'email_link_clicked' THEN i.p ->> 'user_agent' END,
       i.account_id,
       i.s ->> 'id',
       i.p ->> 'email_id',
       i.p ->> 'email_subject',
       i.p ->> 'delivery_id',
       i.p ->> 'url',
       i.p ->> 'campaign_id',
       i.p ->> 'campaign_name'
FROM identity i
LEFT JOIN mapping m ON m.drip_event = i.drip_event
