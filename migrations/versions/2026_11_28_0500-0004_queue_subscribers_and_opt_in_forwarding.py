"""Take costs off every load: subscribers merge per run, the outbox fills once forwarding is
on, and the time indexes of the event tables are BRIN.

- ``_subscriber_changes``: an index-free queue of subscriber snapshots.  The mapping
  statement appends each event's snapshot here, and ``subscribers`` is merged from it at
  the end of each transform run, instead of an upsert per subscriber per chunk.
- ``_forwarding``: one row once forwarding to Segment is on (the first ``emit`` inserts it
  and queues the history).  Until then the mapping statement no longer writes ``_outbox``.

- The ``received_at`` and ``timestamp`` indexes of ``tracks`` and the six collection tables
  become BRIN: these tables are appended to in time order, where a BRIN index answers a
  time-range scan nearly as well as a B-tree at almost no cost per insert (four B-tree
  insertions per email event, all landing writers on the same rightmost pages).

A warehouse that has forwarded before (``_outbox`` holds a sent or failed event) starts with
forwarding on.  The downgrade merges what is queued and queues in ``_outbox`` every event
of ``tracks`` it lacks, so revision 0003's invariants (subscribers up to date, an outbox
row per email event) hold again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of sql/transform/merge_subscribers.sql at this revision (without the batch
# limit: the downgrade merges the whole queue at once).
_MERGE_ALL = r"""
INSERT INTO subscribers AS cur (id, email, user_id, status, tags, custom_fields, time_zone,
                                lead_score, lifetime_value, created_at, first_seen_at, last_seen_at)
SELECT id,
       nullif(sub ->> 'email', ''),
       nullif(btrim(sub ->> 'user_id', E' \t\n\r\f\v'), ''),
       sub ->> 'status',
       nullif(sub -> 'tags', 'null'),
       nullif(sub -> 'custom_fields', 'null'),
       sub ->> 'time_zone',
       CASE WHEN jsonb_typeof(sub -> 'lead_score') = 'number' THEN CAST(sub ->> 'lead_score' AS numeric) END,
       CASE WHEN jsonb_typeof(sub -> 'lifetime_value') = 'number' THEN CAST(sub ->> 'lifetime_value' AS numeric) END,
       _to_timestamptz(sub ->> 'created_at'),
       first_seen_at, occurred_at
FROM (
    SELECT l.id, l.occurred_at, l.first_seen_at, r.payload -> 'data' -> 'subscriber' AS sub
    FROM (
        SELECT DISTINCT ON (id) id, occurred_at, _event_key,
               min(occurred_at) OVER newest_first AS first_seen_at
        FROM _subscriber_changes
        WINDOW newest_first AS (PARTITION BY id ORDER BY occurred_at DESC, _event_key DESC
                                ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
        ORDER BY id, occurred_at DESC, _event_key DESC
    ) l
    JOIN _raw_events r ON r._event_key = l._event_key
) newest
ORDER BY id
ON CONFLICT (id) DO UPDATE SET
    email          = CASE WHEN excluded.last_seen_at > cur.last_seen_at THEN excluded.email ELSE cur.email END,
    user_id        = CASE WHEN excluded.last_seen_at > cur.last_seen_at THEN excluded.user_id ELSE cur.user_id END,
    status         = CASE WHEN excluded.last_seen_at > cur.last_seen_at THEN excluded.status ELSE cur.status END,
    tags           = CASE WHEN excluded.last_seen_at > cur.last_seen_at THEN excluded.tags ELSE cur.tags END,
    custom_fields  = CASE WHEN excluded.last_seen_at > cur.last_seen_at THEN excluded.custom_fields ELSE cur.custom_fields END,
    time_zone      = CASE WHEN excluded.last_seen_at > cur.last_seen_at THEN excluded.time_zone ELSE cur.time_zone END,
    lead_score     = CASE WHEN excluded.last_seen_at > cur.last_seen_at THEN excluded.lead_score ELSE cur.lead_score END,
    lifetime_value = CASE WHEN excluded.last_seen_at > cur.last_seen_at THEN excluded.lifetime_value ELSE cur.lifetime_value END,
    created_at     = CASE WHEN excluded.last_seen_at > cur.last_seen_at THEN excluded.created_at ELSE cur.created_at END,
    first_seen_at  = least(cur.first_seen_at, excluded.first_seen_at),
    last_seen_at   = greatest(cur.last_seen_at, excluded.last_seen_at)
WHERE excluded.last_seen_at > cur.last_seen_at OR excluded.first_seen_at < cur.first_seen_at
"""


def _schema() -> str:
    return str(op.get_context().version_table_schema)


_EVENT_TABLES = (
    "tracks",
    "email_delivered",
    "email_opened",
    "email_link_clicked",
    "email_unsubscribed",
    "email_bounced",
    "email_marked_as_spam",
)


def _time_indexes(schema: str, *, using: str) -> None:
    for name in _EVENT_TABLES:
        for column in ("received_at", "timestamp"):
            index = f"ix_{name}_{column}"
            op.drop_index(index, table_name=name, schema=schema)
            op.create_index(index, name, [column], schema=schema, postgresql_using=using)


def upgrade() -> None:
    schema = _schema()
    _time_indexes(schema, using="brin")
    op.create_table(
        "_subscriber_changes",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("_event_key", sa.Text(collation="C"), nullable=False),
        schema=schema,
        comment="Transformed events whose subscriber snapshot is not merged into subscribers yet.",
    )
    op.create_table(
        "_forwarding",
        sa.Column("singleton", sa.Boolean, primary_key=True, server_default=sa.true()),
        sa.Column(
            "enabled_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("singleton", name="ck__forwarding_singleton"),
        schema=schema,
        comment="One row once forwarding to Segment is on: from then on every event is queued in _outbox.",
    )
    forwarding = sa.table("_forwarding", sa.column("singleton"), schema=schema)
    outbox = sa.table("_outbox", sa.column("status"), schema=schema)
    forwarded_before = sa.exists().where(outbox.c.status != "pending")
    op.execute(
        sa.insert(forwarding).from_select(
            ["singleton"], sa.select(sa.true()).where(forwarded_before)
        )
    )


def downgrade() -> None:
    schema = _schema()
    # the frozen statement names its tables bare, like sql/ (schema: validated by Settings)
    op.execute(sa.text("SELECT set_config('search_path', :schema, true)").bindparams(schema=schema))
    op.execute(sa.text(_MERGE_ALL))
    tracks = sa.table("tracks", sa.column("id"), schema=schema)
    outbox = sa.table("_outbox", sa.column("id"), schema=schema)
    op.execute(
        postgresql.insert(outbox)
        .from_select(["id"], sa.select(tracks.c.id))
        .on_conflict_do_nothing()
    )
    op.drop_table("_forwarding", schema=schema)
    op.drop_table("_subscriber_changes", schema=schema)
    _time_indexes(schema, using="btree")
