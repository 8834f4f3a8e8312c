"""Add _outbox: which email events Segment has accepted, which are pending, which failed.

Events already in the warehouse are queued as pending, so the first ``drip-loader emit``
forwards the history too (every landed email event not yet confirmed by Segment).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema() -> str:
    return str(op.get_context().version_table_schema)


def upgrade() -> None:
    schema = _schema()
    op.create_table(
        "_outbox",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column(
            "queued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("attempted_at", sa.DateTime(timezone=True)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name="ck__outbox_status"),
        schema=schema,
        comment="Forwarding to Segment: one row per email event; sent once Segment accepted it.",
    )
    # Emitters walk the pending rows oldest first; the partial index is as small as the backlog.
    op.create_index(
        "ix__outbox_pending",
        "_outbox",
        ["queued_at", "id"],
        schema=schema,
        postgresql_where=sa.text("status = 'pending'"),
    )
    tracks = sa.table("tracks", sa.column("id"), schema=schema)
    outbox = sa.table("_outbox", sa.column("id"), schema=schema)
    op.execute(sa.insert(outbox).from_select(["id"], sa.select(tracks.c.id)))


def downgrade() -> None:
    op.drop_table("_outbox", schema=_schema())
