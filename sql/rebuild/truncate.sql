-- name: truncate_collections
-- Empty what the transform writes, and the queue, before re-queueing every landed event.
TRUNCATE tracks, email_delivered, email_opened, email_link_clicked, email_unsubscribed,
         email_bounced, email_marked_as_spam, subscribers, _subscriber_changes, _pending
