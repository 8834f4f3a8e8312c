-- name: insert_collection (a CTE of transform/map_and_insert.sql, one per collection that is on)
-- A template (string.Template) filled in by loader.mapping from loader.registry:
-- $cte and $table are quoted identifiers, $slug a quoted literal, $properties the
-- collection's property columns and $values the `mapped` columns they come from.
$cte AS (
    INSERT INTO $table (id, anonymous_id, user_id, event, event_text, original_timestamp, timestamp,
                        received_at, sent_at, context_library_name, context_library_version,
                        context_integration_name, context_integration_version, context_traits_email,
                        context_ip, context_user_agent, context_drip_account_id, context_drip_subscriber_id$properties)
    SELECT id, anonymous_id, user_id, event, event_text, occurred_at, occurred_at,
           received_at, received_at, 'drip-loader', :library_version, 'drip', '1.0.0', email,
           context_ip, context_user_agent, account_id, subscriber_id$values
    FROM mapped WHERE event = $slug
    RETURNING 1
)