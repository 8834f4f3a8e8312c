"""Add _imports: the ledger of ``drip-loader import-segment``, and say in the comments what
rows copied from a Segment-made schema hold.

One ``_imports`` row per (source schema, table) copied: the cutoff (nothing at or after it
is copied), why that cutoff, the last key copied (``timestamp``, ``id``: batches go in that
order, so a killed run resumes after it), and the rows read and added.  The comments of
``id`` and ``received_at`` (every event table) and of ``subscribers.id`` now say what they
hold for imported rows.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)

# Frozen copy of the event tables at this revision (loader.registry's collections and tracks).
_EVENT_TABLES = (
    "email_delivered",
    "email_opened",
    "email_link_clicked",
    "email_unsubscribed",
    "email_bounced",
    "email_marked_as_spam",
    "subscriber_created",
    "subscriber_deleted",
    "subscriber_subscribed_to_email_marketing",
    "subscriber_reactivated",
    "subscriber_became_non_prospect",
    "subscriber_marked_as_deliverable",
    "subscriber_marked_as_undeliverable",
    "subscriber_subscribed_to_campaign",
    "subscriber_removed_from_campaign",
    "subscriber_completed_campaign",
    "subscriber_applied_tag",
    "subscriber_removed_tag",
    "subscriber_updated_custom_field",
    "subscriber_updated_alias",
    "subscriber_updated_email_address",
    "subscriber_updated_lifetime_value",
    "subscriber_updated_time_zone",
    "subscriber_clicked_trigger_link",
    "subscriber_visited_page",
    "subscriber_became_lead",
    "subscriber_updated_lead_score",
    "subscriber_performed_custom_event",
    "tracks",
)

# column -> (comment before, comment after)
_COMMON: dict[str, tuple[str, str]] = {
    "id": (
        "Event id: drip- and 40 hex characters of a sha256 over the event's key fields, "
        "its timestamp among them (Segment's messageId); the same in the collection table and in "
        "tracks. Unique: the key is (timestamp, id) and the id hashes the timestamp, so an id is "
        "stored once (an id not computed by drip-loader is unique together with its timestamp).",
        "Event id: drip- and 40 hex characters of a sha256 over the event's key fields, "
        "its timestamp among them (Segment's messageId); the same in the collection table and in "
        "tracks. Unique: the key is (timestamp, id) and the id hashes the timestamp, so an id is "
        "stored once (an id not computed by drip-loader is unique together with its timestamp). "
        "Rows copied by drip-loader import-segment keep Segment's message id.",
    ),
    "received_at": (
        "When the loader first received the event (webhook arrival or file landing); "
        "kept by rebuild.",
        "When the loader first received the event (webhook arrival or file landing); "
        "kept by rebuild. Rows copied by drip-loader import-segment: when Segment received it.",
    ),
}
_SUBSCRIBER_ID = (
    "Drip subscriber id.",
    "Drip subscriber id; email: and the address in lower case for a subscriber known only "
    "by email from history copied by drip-loader import-segment.",
)


def _schema() -> str:
    return str(op.get_context().version_table_schema)


def _comment(target: str, text: str) -> None:
    # COMMENT takes no bind parameters: the text goes in as a quoted SQL literal
    literal = sa.literal(text).compile(
        dialect=op.get_bind().dialect, compile_kwargs={"literal_binds": True}
    )
    op.execute(f"COMMENT ON COLUMN {target} IS {literal}")


def _comments(after: bool) -> None:
    schema = _schema()
    quote = op.get_bind().dialect.identifier_preparer.quote
    for table in _EVENT_TABLES:
        for column, texts in _COMMON.items():
            _comment(f"{quote(schema)}.{quote(table)}.{quote(column)}", texts[after])
    _comment(f"{quote(schema)}.subscribers.id", _SUBSCRIBER_ID[after])


def upgrade() -> None:
    op.create_table(
        "_imports",
        sa.Column("source_schema", sa.Text, primary_key=True),
        sa.Column("table_name", sa.Text, primary_key=True),
        sa.Column("cutoff", _TS, nullable=False),
        sa.Column("cutoff_reason", sa.Text, nullable=False),
        sa.Column("last_timestamp", _TS),
        sa.Column("last_id", sa.Text(collation="C")),
        sa.Column("rows_read", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("rows_added", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("started_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", _TS),
        schema=_schema(),
        comment="History copied from a Segment-made schema by drip-loader import-segment: per "
        "source table, the cutoff, the last (timestamp, id) copied and the rows added.",
    )
    _comments(True)


def downgrade() -> None:
    _comments(False)
    op.drop_table("_imports", schema=_schema())
