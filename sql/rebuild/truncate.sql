-- name: truncate_collections
-- Empty what the transform writes, and the queue, before re-queueing every landed event.
-- A template (string.Template) filled in by loader.mapping with every collection table of
-- loader.domain.registry, on or off (see "Collections" in docs/users.md: a rebuild maps what is on).
TRUNCATE tracks, $collections, subscribers, _subscriber_changes, _pending
