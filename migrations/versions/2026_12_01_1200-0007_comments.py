r"""Postgres comments on every analyst-facing table, column and view, so ``dbt docs``, BI
tools and ``\d+`` show what each one is.

Generated once from the collection registry and ``loader.tables`` (their descriptions),
then frozen here like every revision's copy: a later change of a description is a new
revision, and the test suite's ``alembic check`` (which compares comments) says so.
The views' comments (not in the metadata) come from ``loader.dbt_sources.VIEW_COLUMNS``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COMMON: dict[str, str] = {
    "id": "Event id: drip- and 40 hex characters of a sha256 over the event's key fields "
    "(Segment's messageId); the same in the collection table and in tracks.",
    "anonymous_id": "The subscriber's email when Drip sent no user id (else NULL); "
    "drip:<subscriber id> when there is neither.",
    "user_id": "Drip's subscriber user_id when it is a non-empty string, else NULL.",
    "event": "The collection's slug, e.g. email_opened: joins tracks to the collection table.",
    "event_text": "Segment's event name, e.g. Email Opened.",
    "original_timestamp": "When the event happened (Drip's occurred_at).",
    "timestamp": "When the event happened (Drip's occurred_at).",
    "received_at": "When the loader first received the event (webhook arrival or file landing); "
    "kept by rebuild.",
    "sent_at": "Same as received_at: Drip sends no send time.",
    "uuid_ts": "When this row was written to this table (a rebuild writes it again).",
    "context_library_name": "drip-loader.",
    "context_library_version": "The drip-loader version that wrote the row.",
    "context_integration_name": "drip (Segment's partner-source convention).",
    "context_integration_version": "1.0.0 (Segment's partner-source convention).",
    "context_traits_email": "The subscriber's email.",
    "context_ip": "IP address Drip sent with the event (link and trigger-link clicks), else NULL.",
    "context_user_agent": "User agent Drip sent with the event (link clicks), else NULL.",
    "context_drip_account_id": "Drip account id.",
    "context_drip_subscriber_id": "Drip subscriber id.",
}
"""The common columns of every collection table and ``tracks`` (spec §5)."""

_TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "email_delivered": (
        "One row per email Drip delivered to a subscriber (webhook is opt-in in Drip).",
        {
            "email_id": "Drip id of the email.",
            "email_subject": "Subject line of the email.",
            "delivery_id": "Drip id of the delivery of the email to this subscriber.",
        },
    ),
    "email_opened": (
        "One row per open of an email.",
        {
            "email_id": "Drip id of the email.",
            "email_subject": "Subject line of the email.",
            "delivery_id": "Drip id of the delivery of the email to this subscriber.",
        },
    ),
    "email_link_clicked": (
        "One row per click on a link in an email; context_ip and "
        "context_user_agent are the clicker's.",
        {
            "email_id": "Drip id of the email.",
            "email_subject": "Subject line of the email.",
            "delivery_id": "Drip id of the delivery of the email to this subscriber.",
            "link_url": "The URL clicked.",
        },
    ),
    "email_unsubscribed": (
        "One row per unsubscribe, from one campaign or from all email.",
        {
            "campaign_id": "Drip id of the campaign unsubscribed from (scope campaign).",
            "campaign_name": "Name of the campaign unsubscribed from (scope campaign).",
            "unsubscribe_scope": "campaign: from one campaign; all: from every email.",
        },
    ),
    "email_bounced": (
        "One row per email that bounced.",
        {
            "email_id": "Drip id of the email.",
            "email_subject": "Subject line of the email.",
            "delivery_id": "Drip id of the delivery of the email to this subscriber.",
        },
    ),
    "email_marked_as_spam": (
        "One row per email the subscriber marked as spam.",
        {
            "email_id": "Drip id of the email.",
            "email_subject": "Subject line of the email.",
            "delivery_id": "Drip id of the delivery of the email to this subscriber.",
        },
    ),
    "subscriber_created": ("One row per subscriber created in Drip.", {}),
    "subscriber_deleted": ("One row per subscriber deleted from Drip.", {}),
    "subscriber_subscribed_to_email_marketing": (
        "One row per subscriber who opted in to email marketing.",
        {},
    ),
    "subscriber_reactivated": ("One row per subscriber reactivated.", {}),
    "subscriber_became_non_prospect": ("One row per subscriber marked as non-prospect.", {}),
    "subscriber_marked_as_deliverable": (
        "One row per subscriber marked as deliverable.",
        {"source": "What made the change, as Drip reports it (e.g. drip, api, import)."},
    ),
    "subscriber_marked_as_undeliverable": (
        "One row per subscriber marked as undeliverable.",
        {"source": "What made the change, as Drip reports it (e.g. drip, api, import)."},
    ),
    "subscriber_subscribed_to_campaign": (
        "One row per subscription of a subscriber to a campaign.",
        {
            "campaign_id": "Drip id of the campaign (email series).",
            "campaign_name": "Name of the campaign.",
        },
    ),
    "subscriber_removed_from_campaign": (
        "One row per removal of a subscriber from a campaign.",
        {
            "campaign_id": "Drip id of the campaign (email series).",
            "campaign_name": "Name of the campaign.",
        },
    ),
    "subscriber_completed_campaign": (
        "One row per subscriber who reached the end of a campaign.",
        {
            "campaign_id": "Drip id of the campaign (email series).",
            "campaign_name": "Name of the campaign.",
        },
    ),
    "subscriber_applied_tag": ("One row per tag applied to a subscriber.", {"tag": "The tag."}),
    "subscriber_removed_tag": ("One row per tag removed from a subscriber.", {"tag": "The tag."}),
    "subscriber_updated_custom_field": (
        "One row per change of a subscriber's custom field.",
        {
            "identifier": "Which field changed (the custom field or alias name).",
            "value": "The new value.",
            "previous_value": "The value before the change.",
            "source": "What made the change, as Drip reports it (e.g. drip, api, import).",
        },
    ),
    "subscriber_updated_alias": (
        "One row per change of a subscriber's alias.",
        {
            "identifier": "Which field changed (the custom field or alias name).",
            "value": "The new value.",
            "previous_value": "The value before the change.",
            "source": "What made the change, as Drip reports it (e.g. drip, api, import).",
        },
    ),
    "subscriber_updated_email_address": (
        "One row per change of a subscriber's email address.",
        {
            "value": "The new email address.",
            "previous_value": "The email address before the change.",
            "source": "What made the change, as Drip reports it (e.g. drip, api, import).",
        },
    ),
    "subscriber_updated_lifetime_value": (
        "One row per change of a subscriber's lifetime value.",
        {
            "value": "The new lifetime value (decimal text).",
            "previous_value": "The lifetime value before the change (decimal text).",
            "source": "What made the change, as Drip reports it (e.g. drip, api, import).",
        },
    ),
    "subscriber_updated_time_zone": (
        "One row per change of a subscriber's time zone.",
        {
            "value": "The new time zone (IANA name).",
            "previous_value": "The time zone before the change.",
        },
    ),
    "subscriber_clicked_trigger_link": (
        "One row per click on a Drip trigger link; context_ip is the clicker's.",
        {
            "url": "The trigger link's URL.",
            "trigger_id": "Drip id of the trigger link.",
            "source": "What made the change, as Drip reports it (e.g. drip, api, import).",
        },
    ),
    "subscriber_visited_page": (
        "One row per page visit tracked by Drip's JavaScript snippet.",
        {"url": "The page's URL."},
    ),
    "subscriber_became_lead": (
        "One row per subscriber who became a lead.",
        {"lead_score": "Lead score when the subscriber became a lead (decimal text)."},
    ),
    "subscriber_updated_lead_score": (
        "One row per change of a subscriber's lead score.",
        {
            "lead_score": "The new lead score (decimal text).",
            "previous_lead_score": "The lead score before the change (decimal text).",
        },
    ),
    "subscriber_performed_custom_event": (
        "One row per custom event recorded in Drip (through its API or JavaScript).",
        {
            "action": "The custom event's name.",
            "properties": "Every property of the event as received "
            "(custom events carry arbitrary ones).",
        },
    ),
    "tracks": ("One row per event of every collection that is on, with the common columns.", {}),
    "subscribers": (
        "One row per Drip subscriber id: the snapshot of its latest event.",
        {
            "id": "Drip subscriber id.",
            "email": "The subscriber's email.",
            "user_id": "The subscriber's user_id in Drip.",
            "status": "Drip's status of the subscriber, e.g. active or unsubscribed.",
            "tags": "Drip tags (JSON array).",
            "custom_fields": "Drip custom fields (JSON object).",
            "time_zone": "The subscriber's time zone.",
            "lead_score": "Drip lead score.",
            "lifetime_value": "Drip lifetime value.",
            "created_at": "When the subscriber was created in Drip.",
            "first_seen_at": "occurred_at of the subscriber's earliest event in the warehouse.",
            "last_seen_at": "occurred_at of the event whose snapshot this row holds (the latest).",
        },
    ),
}
"""Table -> (its comment, the comments of its columns other than the common ones)."""

_DRIP_COLUMNS: dict[str, dict[str, str]] = {
    "drip_subscribers": {
        "id": "Drip's id of the record (text, as the API sends it).",
        "raw": "The record as Drip's API returned it.",
        "synced_at": "The last drip sync that saw the record.",
        "deleted_at": "The first drip sync that no longer found the record (NULL "
        "while Drip has it).",
    },
    "drip_campaigns": {
        "id": "Drip's id of the record (text, as the API sends it).",
        "raw": "The record as Drip's API returned it.",
        "synced_at": "The last drip sync that saw the record.",
        "deleted_at": "The first drip sync that no longer found the record (NULL "
        "while Drip has it).",
    },
    "drip_broadcasts": {
        "id": "Drip's id of the record (text, as the API sends it).",
        "raw": "The record as Drip's API returned it.",
        "synced_at": "The last drip sync that saw the record.",
        "deleted_at": "The first drip sync that no longer found the record (NULL "
        "while Drip has it).",
    },
    "drip_workflows": {
        "id": "Drip's id of the record (text, as the API sends it).",
        "raw": "The record as Drip's API returned it.",
        "synced_at": "The last drip sync that saw the record.",
        "deleted_at": "The first drip sync that no longer found the record (NULL "
        "while Drip has it).",
    },
    "drip_tags": {
        "name": "The tag itself: Drip lists them as bare strings.",
        "raw": "The record as Drip's API returned it.",
        "synced_at": "The last drip sync that saw the record.",
        "deleted_at": "The first drip sync that no longer found the record (NULL while "
        "Drip has it).",
    },
    "drip_custom_fields": {
        "identifier": "The custom field itself: Drip lists them as bare strings.",
        "raw": "The record as Drip's API returned it.",
        "synced_at": "The last drip sync that saw the record.",
        "deleted_at": "The first drip sync that no longer found the record "
        "(NULL while Drip has it).",
    },
}
"""The key and bookkeeping columns of the ``drip sync`` tables (revision 0006 commented the
tables themselves)."""

_VIEWS: dict[str, tuple[str, dict[str, str]]] = {
    "campaign_unsubscribes": (
        "One row per campaign_id for campaign-scoped unsubscribes, plus one "
        "row with a NULL campaign_id for unsubscribe-from-all.  A "
        "campaign-scoped unsubscribe without a campaign_id belongs to "
        "neither, so it is left out (it stays in email_unsubscribed).",
        {
            "campaign_id": "Drip campaign id; NULL on the row of unsubscribes from all.",
            "campaign_name": "The campaign's latest name.",
            "unsubscribes": "Distinct people (user_id, else anonymous_id) who unsubscribed.",
            "first_at": "The first unsubscribe.",
            "last_at": "The last unsubscribe.",
        },
    ),
    "daily_email_activity": (
        "One row per UTC day and email event slug (from tracks, which holds "
        "every event of the collections that are on; the opt-in collections "
        "of spec §9 are left out, so the view keeps its meaning when they "
        "are turned on): how many events, and how many distinct people "
        "(user_id, else anonymous_id).  The list is loader.registry's email "
        "collections (a test checks it).",
        {
            "day": "UTC day of the events' timestamp.",
            "event": "Collection slug, e.g. email_opened.",
            "events": "Events that day.",
            "unique_people": "Distinct people (user_id, else anonymous_id) that day.",
        },
    ),
    "email_performance": (
        "One row per email_id seen in any email table: how the email did, all "
        "time.  A recipient is coalesce(delivery_id, user_id, anonymous_id); "
        "unique_* count distinct recipients. Rates are NULL when their "
        "denominator is 0: many accounts never enable the Email Delivered "
        'webhook, so "no deliveries" must not read as a rate of zero.',
        {
            "email_id": "Drip email id.",
            "email_subject": "The email's latest subject.",
            "delivered": "Email Delivered events.",
            "opens": "Email Opened events.",
            "unique_opens": "Distinct recipients who opened.",
            "clicks": "Email Link Clicked events.",
            "unique_clicks": "Distinct recipients who clicked.",
            "bounces": "Email Bounced events.",
            "spam_reports": "Email Marked as Spam events.",
            "open_rate": "unique_opens / delivered; NULL without deliveries.",
            "click_rate": "unique_clicks / delivered; NULL without deliveries.",
            "click_to_open_rate": "unique_clicks / unique_opens; NULL without opens.",
            "first_event_at": "The email's first event.",
            "last_event_at": "The email's last event.",
        },
    ),
    "subscribers_webhook_and_api": (
        "Every subscriber either source knows, one row per Drip "
        "subscriber id, both states side by side: webhook_* is the "
        "snapshot of its latest webhook event (table subscribers), "
        "api_* is what the last `drip-loader drip sync` read from "
        "Drip's API (table drip_subscribers). Neither hides the "
        "other: a subscriber who never had an event has only api_* "
        "values, one that Drip deleted keeps its webhook_* values and "
        "api_deleted_at.",
        {
            "id": "Drip subscriber id.",
            "in_webhooks": "Whether any webhook event of the subscriber "
            "was loaded (table subscribers).",
            "in_api": "Whether the last drip sync found the subscriber in Drip (not deleted).",
            "webhook_email": "Email in the snapshot of the subscriber's latest webhook event.",
            "webhook_status": "Status in that snapshot.",
            "webhook_tags": "Tags in that snapshot (JSON array).",
            "webhook_custom_fields": "Custom fields in that snapshot (JSON object).",
            "webhook_lead_score": "Lead score in that snapshot.",
            "webhook_lifetime_value": "Lifetime value in that snapshot.",
            "webhook_first_seen_at": "occurred_at of the subscriber's earliest webhook event.",
            "webhook_last_seen_at": "occurred_at of the event whose snapshot this is.",
            "api_email": "Email as Drip's API returned it at the last drip sync.",
            "api_status": "Status from Drip's API.",
            "api_tags": "Tags from Drip's API (JSON array).",
            "api_custom_fields": "Custom fields from Drip's API (JSON object).",
            "api_lead_score": "Lead score from Drip's API.",
            "api_lifetime_value": "Lifetime value from Drip's API.",
            "api_created_at": "When the subscriber was created in Drip (API).",
            "api_synced_at": "The last drip sync that saw the subscriber.",
            "api_deleted_at": "The first drip sync that no longer found the subscriber.",
        },
    ),
}
"""View -> (its comment, its columns' comments)."""


def _schema() -> str:
    return str(op.get_context().version_table_schema)


def _comment(kind: str, target: str, text: str | None) -> None:
    # COMMENT takes no bind parameters: the text goes in as a quoted SQL literal
    literal = (
        "NULL"
        if text is None
        else sa.literal(text).compile(
            dialect=op.get_bind().dialect, compile_kwargs={"literal_binds": True}
        )
    )
    op.execute(f"COMMENT ON {kind} {target} IS {literal}")


def _apply(keep: bool) -> None:
    schema = _schema()
    quote = op.get_bind().dialect.identifier_preparer.quote
    for table, (comment, columns) in _TABLES.items():
        target = f"{quote(schema)}.{quote(table)}"
        _comment("TABLE", target, comment if keep else None)
        every = columns if table == "subscribers" else {**_COMMON, **columns}
        for column, text in every.items():
            _comment("COLUMN", f"{target}.{quote(column)}", text if keep else None)
    for table, columns in _DRIP_COLUMNS.items():
        target = f"{quote(schema)}.{quote(table)}"
        for column, text in columns.items():
            _comment("COLUMN", f"{target}.{quote(column)}", text if keep else None)
    for view, (comment, columns) in _VIEWS.items():
        target = f"{quote(schema)}.{quote(view)}"
        _comment("VIEW", target, comment if keep else None)
        for column, text in columns.items():
            _comment("COLUMN", f"{target}.{quote(column)}", text if keep else None)


def upgrade() -> None:
    _apply(True)


def downgrade() -> None:
    _apply(False)
