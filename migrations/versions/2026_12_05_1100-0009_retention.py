"""Retention: forwarding can be turned off, sent outbox rows can be deleted, and raw months
moved out to files are recorded.

- ``_forwarding.off_since``: set by ``drip-loader emit --off`` (NULL while forwarding is
  on).  Events received before it are still queued when they are transformed; events
  received from it on are not, until ``emit --on`` queues them.
- ``_forwarding.pruned_sent``: how many sent ``_outbox`` rows retention has deleted; while
  it is 0 and no row is sent, nothing was ever confirmed by Segment.
- ``ix__outbox_sent``: retention finds the sent rows older than its window through it,
  oldest first, in batches, without reading the whole outbox.
- ``_archives``: one row per raw month (and part) ``drip-loader archive`` wrote to a file,
  checked and dropped from ``_raw_events``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema() -> str:
    return str(op.get_context().version_table_schema)


def upgrade() -> None:
    schema = _schema()
    op.add_column(
        "_forwarding",
        sa.Column("off_since", sa.DateTime(timezone=True)),
        schema=schema,
    )
    op.add_column(
        "_forwarding",
        sa.Column("pruned_sent", sa.BigInteger, nullable=False, server_default="0"),
        schema=schema,
    )
    op.create_table_comment(
        "_forwarding",
        "One row once forwarding to Segment was first turned on; off_since is set while it "
        "is turned off (drip-loader emit --off).",
        schema=schema,
    )
    op.create_index(
        "ix__outbox_sent",
        "_outbox",
        ["sent_at"],
        schema=schema,
        postgresql_where=sa.text("status = 'sent'"),
    )
    op.create_table(
        "_archives",
        sa.Column("month", sa.Date, primary_key=True),
        sa.Column("part", sa.Integer, primary_key=True),
        sa.Column("raw_file", sa.Text),
        sa.Column("raw_events", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("raw_sha256", sa.Text),
        sa.Column("rejects_file", sa.Text),
        sa.Column("rejects", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("rejects_sha256", sa.Text),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("archived_at", sa.DateTime(timezone=True)),
        schema=schema,
        comment="Raw months moved out to gzip NDJSON files by drip-loader archive "
        "(checked before their rows were dropped; archived_at NULL: not finished yet).",
    )


def downgrade() -> None:
    schema = _schema()
    op.drop_table("_archives", schema=schema)
    op.drop_index("ix__outbox_sent", table_name="_outbox", schema=schema)
    op.create_table_comment(
        "_forwarding",
        "One row once forwarding to Segment is on: from then on every event is queued in _outbox.",
        schema=schema,
    )
    # Forwarding turned off had no representation before: it was on for good.  Queue the
    # events received while it was off, so the revision's invariant (every event of tracks
    # has an outbox row once forwarding is on) holds again.
    forwarding = sa.table("_forwarding", sa.column("off_since"), schema=schema)
    tracks = sa.table(
        "tracks", sa.column("id"), sa.column("timestamp"), sa.column("received_at"), schema=schema
    )
    outbox = sa.table("_outbox", sa.column("id"), sa.column("timestamp"), schema=schema)
    op.execute(
        postgresql.insert(outbox)
        .from_select(
            ["id", "timestamp"],
            sa.select(tracks.c.id, tracks.c.timestamp).where(
                sa.exists().where(
                    forwarding.c.off_since.is_not(None),
                    tracks.c.received_at >= forwarding.c.off_since,
                )
            ),
        )
        .on_conflict_do_nothing()
    )
    op.drop_column("_forwarding", "pruned_sent", schema=schema)
    op.drop_column("_forwarding", "off_since", schema=schema)
