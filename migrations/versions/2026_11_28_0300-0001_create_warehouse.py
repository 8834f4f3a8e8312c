"""Create the warehouse: six collection tables, tracks, and the internal _ tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the layout at this revision (loader.tables may move on).
_EMAIL = ("email_id", "email_subject", "delivery_id")
_COLLECTIONS = {
    "email_delivered": _EMAIL,
    "email_opened": _EMAIL,
    "email_link_clicked": (*_EMAIL, "link_url"),
    "email_unsubscribed": ("campaign_id", "campaign_name", "unsubscribe_scope"),
    "email_bounced": _EMAIL,
    "email_marked_as_spam": _EMAIL,
    "tracks": (),
}
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


# Event ids are ASCII: the "C" collation compares them bytewise, much cheaper than a
# linguistic collation for the unique indexes every landing probes.
_KEY = sa.Text(collation="C")


def _schema() -> str:
    return str(op.get_context().version_table_schema)


def _ts(name: str, **kwargs: object) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), **kwargs)  # type: ignore[arg-type]


def upgrade() -> None:
    schema = _schema()
    for name, properties in _COLLECTIONS.items():
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
            schema=schema,
        )
        op.create_index(f"ix_{name}_received_at", name, ["received_at"], schema=schema)
        op.create_index(f"ix_{name}_timestamp", name, ["timestamp"], schema=schema)

    op.create_table(
        "_raw_events",
        sa.Column("_event_key", _KEY, primary_key=True),
        sa.Column("event", sa.Text, nullable=False),
        _ts("occurred_at", nullable=False),
        _ts("received_at", nullable=False),
        sa.Column("is_email", sa.Boolean, nullable=False),
        sa.Column("_load_id", sa.Text, nullable=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("payload", postgresql.JSONB, nullable=False),
        schema=schema,
        comment="Every accepted Drip webhook body, once per event id, as received.",
    )
    op.create_table(
        "_pending",
        sa.Column("_event_key", _KEY, nullable=False),
        schema=schema,
        comment="Landed events not yet transformed: a queue, so no landing is ever skipped.",
    )
    op.create_table(
        "_rejects",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("_load_id", sa.Text, nullable=False),
        _ts("rejected_at", nullable=False, server_default=sa.func.now()),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("raw_text", sa.Text, nullable=False),
        sa.Column("raw_bytes", sa.LargeBinary),
        sa.Column("raw_size", sa.BigInteger, nullable=False),
        sa.Column("raw_sha256", sa.Text, nullable=False),
        sa.UniqueConstraint("raw_sha256", "origin", name="uq__rejects_raw_origin"),
        schema=schema,
        comment="Records that could not be mapped, with the reason and where they came from.",
    )
    op.create_table(
        "_runs",
        sa.Column("load_id", sa.Text, primary_key=True),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        _ts("started_at", nullable=False, server_default=sa.func.now()),
        _ts("finished_at"),
        sa.Column("sources", sa.Text),
        sa.Column("counts", postgresql.JSONB),
        sa.Column("error", sa.Text),
        schema=schema,
        comment="One row per load/transform run: what it read and what it added.",
    )


def downgrade() -> None:
    schema = _schema()
    for name in ("_runs", "_rejects", "_pending", "_raw_events", *reversed(_COLLECTIONS)):
        op.drop_table(name, schema=schema)
