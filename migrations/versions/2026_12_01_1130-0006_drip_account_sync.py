"""Drip account sync: a table per resource ``drip sync`` copies from Drip's REST API, and
the view ``subscribers_webhook_and_api`` that shows the webhook snapshot and the API state
of each subscriber side by side.

Each table has the resource's documented fields as typed columns (the first is the key),
the record as received in ``raw``, ``synced_at`` and ``deleted_at``.  Ids are text, as in
the webhook tables, so ``email_unsubscribed.campaign_id`` joins ``drip_campaigns.id``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from loader.warehouse.replaceable import ReplaceableObject

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)

# Frozen copy of loader.drip_resources at this revision: table -> (resource, columns).
_TABLES: dict[str, tuple[str, tuple[tuple[str, Any], ...]]] = {
    "drip_subscribers": (
        "subscribers",
        (
            ("id", sa.Text),
            ("status", sa.Text),
            ("initial_status", sa.Text),
            ("email", sa.Text),
            ("first_name", sa.Text),
            ("last_name", sa.Text),
            ("address1", sa.Text),
            ("address2", sa.Text),
            ("city", sa.Text),
            ("state", sa.Text),
            ("zip", sa.Text),
            ("country", sa.Text),
            ("phone", sa.Text),
            ("sms_number", sa.Text),
            ("sms_consent", sa.Boolean),
            ("eu_consent", sa.Text),
            ("time_zone", sa.Text),
            ("utc_offset", sa.Integer),
            ("visitor_uuid", sa.Text),
            ("custom_fields", postgresql.JSONB),
            ("tags", postgresql.JSONB),
            ("ip_address", sa.Text),
            ("user_agent", sa.Text),
            ("original_referrer", sa.Text),
            ("landing_url", sa.Text),
            ("prospect", sa.Boolean),
            ("lead_score", sa.Numeric),
            ("base_lead_score", sa.Numeric),
            ("lifetime_value", sa.BigInteger),
            ("user_id", sa.Text),
            ("created_at", _TS),
            ("href", sa.Text),
        ),
    ),
    "drip_campaigns": (
        "campaigns",
        (
            ("id", sa.Text),
            ("status", sa.Text),
            ("name", sa.Text),
            ("from_name", sa.Text),
            ("from_email", sa.Text),
            ("postal_address", sa.Text),
            ("minutes_from_midnight", sa.Integer),
            ("localize_sending_time", sa.Boolean),
            ("days_of_the_week_mask", sa.Text),
            ("start_immediately", sa.Boolean),
            ("double_optin", sa.Boolean),
            ("send_to_confirmation_page", sa.Boolean),
            ("use_custom_confirmation_page", sa.Boolean),
            ("confirmation_url", sa.Text),
            ("notify_subscribe_email", sa.Text),
            ("notify_unsubscribe_email", sa.Text),
            ("bcc", sa.Text),
            ("email_count", sa.Integer),
            ("active_subscriber_count", sa.Integer),
            ("unsubscribed_subscriber_count", sa.Integer),
            ("created_at", _TS),
            ("href", sa.Text),
        ),
    ),
    "drip_broadcasts": (
        "broadcasts",
        (
            ("id", sa.Text),
            ("status", sa.Text),
            ("name", sa.Text),
            ("subject", sa.Text),
            ("from_name", sa.Text),
            ("from_email", sa.Text),
            ("postal_address", sa.Text),
            ("localize_sending_time", sa.Boolean),
            ("send_at", _TS),
            ("bcc", sa.Text),
            ("html_body", sa.Text),
            ("text_body", sa.Text),
            ("preview_url", sa.Text),
            ("created_at", _TS),
            ("href", sa.Text),
        ),
    ),
    "drip_workflows": (
        "workflows",
        (
            ("id", sa.Text),
            ("name", sa.Text),
            ("status", sa.Text),
            ("created_at", _TS),
            ("href", sa.Text),
        ),
    ),
    "drip_tags": (
        "tags",
        (("name", sa.Text),),
    ),
    "drip_custom_fields": (
        "custom_fields",
        (("identifier", sa.Text),),
    ),
}

subscribers_webhook_and_api = ReplaceableObject(
    "subscribers_webhook_and_api",
    r"""-- name: subscribers_webhook_and_api (view)
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
""",
)


def _schema() -> str:
    return str(op.get_context().version_table_schema)


def upgrade() -> None:
    schema = _schema()
    for table, (resource, columns) in _TABLES.items():
        key = columns[0][0]
        op.create_table(
            table,
            *(sa.Column(name, kind, primary_key=name == key) for name, kind in columns),
            sa.Column("raw", postgresql.JSONB, nullable=False),
            sa.Column("synced_at", _TS, nullable=False),
            sa.Column("deleted_at", _TS),
            schema=schema,
            comment=f"Drip's {resource} as the last `drip-loader drip sync` saw them "
            "(deleted_at: gone from Drip since).",
        )
    op.create_view(subscribers_webhook_and_api)


def downgrade() -> None:
    op.drop_view(subscribers_webhook_and_api)
    for table in reversed(_TABLES):
        op.drop_table(table, schema=_schema())
