-- name: claim_collection (a branch of emit/claim.sql, one per collection; a template filled
-- in by loader.mapping: $table a quoted identifier, $properties the property columns of
-- loader.emit.CLAIM_COLUMNS, typed NULL where the collection has none)
SELECT c.queued_at, x.id, x.event, x.event_text, x.user_id, x.anonymous_id, to_json(x."timestamp") #>> '{}',
       x.context_traits_email, x.context_ip, x.context_user_agent, x.context_library_name,
       x.context_library_version, x.context_integration_name, x.context_integration_version$properties
FROM $table x JOIN claimed c ON c."timestamp" = x."timestamp" AND c.id = x.id