"""Opt-in collections: a table for each of the 22 other Drip events (spec §9), and
``_collections``, the warehouse-stored setting of which collections the transform maps.

The six email collections start on, the 22 new ones off (``drip-loader collections
enable`` turns one on and backfills it from ``_raw_events``).  ``changed_at`` is NULL
until a setting is first changed.  ``daily_email_activity`` keeps to the email
collections, so turning others on does not change what it says.

The tables are frozen copies of the layout at this revision (``loader.registry`` may move
on); the view is a frozen copy of ``sql/views/daily_email_activity.sql``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from loader.warehouse.replaceable import ReplaceableObject

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EMAIL = (
    "email_delivered",
    "email_opened",
    "email_link_clicked",
    "email_unsubscribed",
    "email_bounced",
    "email_marked_as_spam",
)
_OPT_IN: dict[str, tuple[str, ...]] = {
    "subscriber_created": (),
    "subscriber_deleted": (),
    "subscriber_subscribed_to_email_marketing": (),
    "subscriber_reactivated": (),
    "subscriber_became_non_prospect": (),
    "subscriber_marked_as_deliverable": ("source",),
    "subscriber_marked_as_undeliverable": ("source",),
    "subscriber_subscribed_to_campaign": ("campaign_id", "campaign_name"),
    "subscriber_removed_from_campaign": ("campaign_id", "campaign_name"),
    "subscriber_completed_campaign": ("campaign_id", "campaign_name"),
    "subscriber_applied_tag": ("tag",),
    "subscriber_removed_tag": ("tag",),
    "subscriber_updated_custom_field": ("identifier", "value", "previous_value", "source"),
    "subscriber_updated_alias": ("identifier", "value", "previous_value", "source"),
    "subscriber_updated_email_address": ("value", "previous_value", "source"),
    "subscriber_updated_lifetime_value": ("value", "previous_value", "source"),
    "subscriber_updated_time_zone": ("value", "previous_value"),
    "subscriber_clicked_trigger_link": ("url", "trigger_id", "source"),
    "subscriber_visited_page": ("url",),
    "subscriber_became_lead": ("lead_score",),
    "subscriber_updated_lead_score": ("lead_score", "previous_lead_score"),
    "subscriber_performed_custom_event": ("action",),
}
"""Opt-in table → its text property columns (spec §9)."""
_JSONB: dict[str, tuple[str, ...]] = {"subscriber_performed_custom_event": ("properties",)}
_CONTEXT = (
    "context_library_name",
    "context_library_version",
    "context_integration_name",
    "context_integration_version",
    "context_traits_email",
    "context_ip",
    "context_user_agent",
    "context_drip_account_id",
    "context_drip_subscriber_id",
)
_KEY = sa.Text(collation="C")

daily_email_activity = ReplaceableObject(
    "daily_email_activity",
    r"""-- name: daily_email_activity (view)
-- One row per UTC day and email event slug (from tracks, which holds every event of the
-- collections that are on; the opt-in collections of spec §9 are left out, so the view
-- keeps its meaning when they are turned on): how many events, and how many distinct
-- people (user_id, else anonymous_id).  The list is loader.registry's email collections
-- (a test checks it).
SELECT CAST(timezone('UTC', "timestamp") AS date) AS day,
       event,
       count(*) AS events,
       count(DISTINCT coalesce(user_id, anonymous_id)) AS unique_people
FROM tracks
WHERE event IN ('email_delivered', 'email_opened', 'email_link_clicked', 'email_unsubscribed',
                'email_bounced', 'email_marked_as_spam')
GROUP BY 1, 2
""",
)


def _schema() -> str:
    return str(op.get_context().version_table_schema)


def _ts(name: str, **kwargs: object) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), **kwargs)  # type: ignore[arg-type]


def upgrade() -> None:
    schema = _schema()
    for name, properties in _OPT_IN.items():
        op.create_table(
            name,
            sa.Column("id", _KEY, primary_key=True),
            sa.Column("anonymous_id", sa.Text),
            sa.Column("user_id", sa.Text),
            sa.Column("event", sa.Text, nullable=False),
            sa.Column("event_text", sa.Text, nullable=False),
            _ts("original_timestamp", nullable=False),
            _ts("timestamp", nullable=False),
            _ts("received_at", nullable=False),
            _ts("sent_at", nullable=False),
            _ts("uuid_ts", nullable=False, server_default=sa.func.now()),
            *(sa.Column(c, sa.Text) for c in _CONTEXT),
            *(sa.Column(p, sa.Text) for p in properties),
            *(sa.Column(p, postgresql.JSONB) for p in _JSONB.get(name, ())),
            schema=schema,
        )
        for column in ("received_at", "timestamp"):
            op.create_index(
                f"ix_{name}_{column}", name, [column], schema=schema, postgresql_using="brin"
            )
    collections = op.create_table(
        "_collections",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        _ts("changed_at"),
        schema=schema,
        comment="Which collections the transform maps (drip-loader collections); "
        "changed_at is NULL until the setting is first changed.",
    )
    assert collections is not None
    op.bulk_insert(
        collections,
        [{"name": n, "enabled": True} for n in _EMAIL]
        + [{"name": n, "enabled": False} for n in _OPT_IN],
    )
    op.replace_view(daily_email_activity, replaces="0002.daily_email_activity")


def downgrade() -> None:
    schema = _schema()
    op.replace_view(daily_email_activity, replace_with="0002.daily_email_activity")
    op.drop_table("_collections", schema=schema)
    # Events of the opt-in collections leave tracks (and the outbox) with their tables:
    # revision 0004's tracks holds the six email collections only.
    tracks = sa.table("tracks", sa.column("id"), sa.column("event"), schema=schema)
    outbox = sa.table("_outbox", sa.column("id"), schema=schema)
    opt_in = sa.select(tracks.c.id).where(tracks.c.event.in_(list(_OPT_IN)))
    op.execute(sa.delete(outbox).where(outbox.c.id.in_(opt_in)))
    op.execute(sa.delete(tracks).where(tracks.c.event.in_(list(_OPT_IN))))
    for name in reversed(_OPT_IN):
        op.drop_table(name, schema=schema)
