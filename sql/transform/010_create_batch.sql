-- name: create_batch
-- The events one transform transaction maps, with every column already computed, so each
-- target table is filled by one set-based INSERT ... SELECT.
CREATE TEMP TABLE _batch (
    id                          text PRIMARY KEY,
    drip_event                  text NOT NULL,
    event                       text,           -- collection slug; NULL for non-email events
    event_text                  text,
    unsubscribe_scope           text,
    anonymous_id                text,
    user_id                     text,
    occurred_at                 timestamptz NOT NULL,
    received_at                 timestamptz NOT NULL,
    context_library_name        text,
    context_library_version     text,
    context_integration_name    text,
    context_integration_version text,
    context_traits_email        text,
    context_ip                  text,
    context_user_agent          text,
    context_drip_account_id     text,
    context_drip_subscriber_id  text,
    email_id                    text,
    email_subject               text,
    delivery_id                 text,
    link_url                    text,
    campaign_id                 text,
    campaign_name               text
) ON COMMIT DROP
