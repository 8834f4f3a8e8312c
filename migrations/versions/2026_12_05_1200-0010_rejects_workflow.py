"""Rejects as a workflow: ``drip-loader rejects retry`` re-validates stored rejects.

A reject that a retry lands stays in ``_rejects``, marked with when and by which run
(``landed_at``, ``landed_load_id``), so what was once refused and why stays visible; one
that still fails keeps its row with the current reason (``first_reason`` keeps the one it
was rejected with).  Every attempt is a row of ``_reject_retries``.  ``rejects list
--since`` reads ``_rejects`` newest first through an index on ``rejected_at``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema() -> str:
    return str(op.get_context().version_table_schema)


def _ts(name: str, **kwargs: object) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), **kwargs)  # type: ignore[arg-type]


def upgrade() -> None:
    schema = _schema()
    op.add_column(
        "_rejects",
        sa.Column(
            "first_reason",
            sa.Text,
            comment="The reason it was first rejected with, once a retry re-validated it "
            "(NULL before: reason is then the first).",
        ),
        schema=schema,
    )
    op.add_column(
        "_rejects",
        _ts(
            "landed_at",
            comment="When drip-loader rejects retry landed it (NULL while it is still rejected).",
        ),
        schema=schema,
    )
    op.add_column(
        "_rejects",
        sa.Column(
            "landed_load_id",
            sa.Text,
            comment="The retry run that landed it (the _load_id of its row in _raw_events).",
        ),
        schema=schema,
    )
    op.create_index("ix__rejects_rejected_at", "_rejects", ["rejected_at"], schema=schema)
    op.create_table(
        "_reject_retries",
        # No foreign key: _rejects stays a table people may empty by hand (TRUNCATE).
        sa.Column("reject_id", sa.BigInteger, primary_key=True, comment="_rejects.id"),
        sa.Column("load_id", sa.Text, primary_key=True, comment="The retry run."),
        _ts("retried_at", nullable=False, server_default=sa.func.now()),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, comment="Why it is still rejected (NULL when it landed)."),
        sa.CheckConstraint("outcome IN ('landed', 'rejected')", name="ck__reject_retries_outcome"),
        schema=schema,
        comment="Every re-validation of a reject by drip-loader rejects retry, and its outcome.",
    )


def downgrade() -> None:
    schema = _schema()
    op.drop_table("_reject_retries", schema=schema)
    op.drop_index("ix__rejects_rejected_at", table_name="_rejects", schema=schema)
    for column in ("landed_load_id", "landed_at", "first_reason"):
        op.drop_column("_rejects", column, schema=schema)
