"""The warehouse schema as SQLAlchemy Core metadata (alembic's ``target_metadata``).

Migrations create these tables with their own, frozen copies of the columns (old
revisions must stay reproducible); ``alembic check`` in the test suite proves the head
revision and this module agree.  The schema name is a setting, so metadata is built per
schema by :func:`build_metadata`.

The event tables (``_raw_events``, ``tracks``, every collection table) are the partitioned
parents; their monthly partitions are made as data arrives (:mod:`loader.warehouse.partitions`)
and are not described here (``migrations/env.py`` leaves them out of ``alembic check``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeEngine

from ..domain.drip_resources import RESOURCES, DripResource, Kind
from ..domain.registry import COLLECTIONS, COMMON_DESCRIPTIONS, TRACKS_DESCRIPTION, Property

KEY = Text(collation="C")
"""Event ids are ASCII: bytewise comparison keeps the unique indexes cheap on any database locale."""

RAW_EVENTS_DESCRIPTION = (
    "Every accepted Drip webhook body, once per event id, as received. Partitioned by month "
    "of occurred_at (UTC) and keyed by (occurred_at, _event_key); _event_key, the event id "
    "(tracks.id), hashes occurred_at with the event's other key fields, so one key has one "
    "occurred_at and no event is stored twice, in any partition."
)
"""The comment of ``_raw_events`` (with the uniqueness it guarantees)."""

COLLECTION_PROPERTIES: dict[str, tuple[str, ...]] = {c.name: c.columns for c in COLLECTIONS}
"""Property columns each collection adds to the common ones (spec §2, §9; from the registry)."""

CONTEXT_COLUMNS = (
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


def _ts(name: str, **kwargs: object) -> Column[object]:
    return Column(name, DateTime(timezone=True), **kwargs)  # type: ignore[arg-type]


def _property(p: Property) -> Column[object]:
    return Column(p.column, JSONB if p.type == "jsonb" else Text, comment=p.description)


def _common(name: str, kind: Any = Text, **kwargs: Any) -> Column[object]:
    """A common column of spec §5, with its description as the Postgres comment (``dbt docs``
    and BI tools read them)."""
    return Column(name, kind, comment=COMMON_DESCRIPTIONS[name], **kwargs)


def _event_table(
    metadata: MetaData, name: str, properties: tuple[Property, ...], *, comment: str
) -> Table:
    """A collection table or ``tracks``: partitioned by month of ``timestamp``, keyed by
    ``(timestamp, id)`` (see :mod:`loader.warehouse.partitions`)."""
    timestamp = DateTime(timezone=True)
    return Table(
        name,
        metadata,
        _common("id", KEY, nullable=False),
        _common("anonymous_id"),
        _common("user_id"),
        _common("event", nullable=False),
        _common("event_text", nullable=False),
        _common("original_timestamp", timestamp, nullable=False),
        _common("timestamp", timestamp, nullable=False),
        _common("received_at", timestamp, nullable=False),
        _common("sent_at", timestamp, nullable=False),
        _common("uuid_ts", timestamp, nullable=False, server_default=func.now()),
        *(_common(c) for c in CONTEXT_COLUMNS),
        *(_property(p) for p in properties),
        # time-led: every insert lands at the recent edge; it serves time ranges too
        PrimaryKeyConstraint("timestamp", "id", name=f"{name}_pkey"),
        # BRIN: appended in time order; a B-tree cost four insertions per email event
        Index(f"ix_{name}_received_at", "received_at", postgresql_using="brin"),
        comment=comment,
        postgresql_partition_by='RANGE ("timestamp")',
    )


_DRIP_TYPES: dict[Kind, type[TypeEngine[Any]] | TypeEngine[Any]] = {
    "text": Text,
    "bool": Boolean,
    "int": Integer,
    "bigint": BigInteger,
    "numeric": Numeric,
    "timestamp": DateTime(timezone=True),
    "json": JSONB,
}


def _drip_key_comment(resource: DripResource) -> str:
    if resource.bare_strings:
        return f"The {resource.name.removesuffix('s').replace('_', ' ')} itself: Drip lists them as bare strings."
    return "Drip's id of the record (text, as the API sends it)."


def drip_table(metadata: MetaData, resource: DripResource) -> Table:
    """The table ``drip sync`` keeps ``resource`` in: its documented fields, typed, then
    ``raw`` (the record as received), ``synced_at`` (the last sync that saw it) and
    ``deleted_at`` (the first sync that no longer did; rows are never dropped)."""
    return Table(
        resource.table,
        metadata,
        *(
            Column(
                name,
                _DRIP_TYPES[kind],
                primary_key=name == resource.key,
                comment=_drip_key_comment(resource) if name == resource.key else None,
            )
            for name, kind in resource.fields
        ),
        Column("raw", JSONB, nullable=False, comment="The record as Drip's API returned it."),
        _ts("synced_at", nullable=False, comment="The last drip sync that saw the record."),
        _ts(
            "deleted_at",
            comment="The first drip sync that no longer found the record (NULL while Drip has it).",
        ),
        comment=f"Drip's {resource.name} as the last `drip-loader drip sync` saw them "
        "(deleted_at: gone from Drip since).",
    )


def build_metadata(schema: str) -> MetaData:
    """All warehouse tables in ``schema`` (already validated by :class:`Settings`)."""
    metadata = MetaData(schema=schema)
    for collection in COLLECTIONS:
        _event_table(
            metadata, collection.name, collection.properties, comment=collection.description
        )
    _event_table(metadata, "tracks", (), comment=TRACKS_DESCRIPTION)
    Table(
        "_collections",
        metadata,
        Column("name", Text, primary_key=True),
        Column("enabled", Boolean, nullable=False),
        _ts("changed_at"),
        comment="Which collections the transform maps (drip-loader collections); "
        "changed_at is NULL until the setting is first changed.",
    )
    Table(
        "subscribers",
        metadata,
        Column(
            "id",
            Text,
            primary_key=True,
            comment="Drip subscriber id; email: and the address in lower case for a subscriber "
            "known only by email from history copied by drip-loader import-segment.",
        ),
        Column("email", Text, comment="The subscriber's email."),
        Column("user_id", Text, comment="The subscriber's user_id in Drip."),
        Column(
            "status", Text, comment="Drip's status of the subscriber, e.g. active or unsubscribed."
        ),
        Column("tags", JSONB, comment="Drip tags (JSON array)."),
        Column("custom_fields", JSONB, comment="Drip custom fields (JSON object)."),
        Column("time_zone", Text, comment="The subscriber's time zone."),
        Column("lead_score", Numeric, comment="Drip lead score."),
        Column("lifetime_value", Numeric, comment="Drip lifetime value."),
        _ts("created_at", comment="When the subscriber was created in Drip."),
        _ts(
            "first_seen_at",
            nullable=False,
            comment="occurred_at of the subscriber's earliest event in the warehouse.",
        ),
        _ts(
            "last_seen_at",
            nullable=False,
            comment="occurred_at of the event whose snapshot this row holds (the latest).",
        ),
        Index("ix_subscribers_email", "email", postgresql_using="hash"),
        comment="One row per Drip subscriber id: the snapshot of its latest event.",
        postgresql_with={
            "fillfactor": 70
        },  # updated by every merge: room for in-place (HOT) updates
    )
    Table(
        "_raw_events",
        metadata,
        Column("_event_key", KEY, nullable=False),
        Column("event", Text, nullable=False),
        _ts("occurred_at", nullable=False),
        _ts("received_at", nullable=False),
        Column("is_email", Boolean, nullable=False),
        Column("_load_id", Text, nullable=False),
        Column("origin", Text, nullable=False),
        Column("payload", JSONB, nullable=False),
        PrimaryKeyConstraint("occurred_at", "_event_key", name="_raw_events_pkey"),
        comment=RAW_EVENTS_DESCRIPTION,
        postgresql_partition_by="RANGE (occurred_at)",
    )
    Table(
        "_pending",
        metadata,
        Column("_event_key", KEY, nullable=False),
        # the landing key's time: the transform finds the event in its month's partition
        _ts("occurred_at", nullable=False),
        comment="Landed events not yet transformed: a queue, so no landing is ever skipped.",
    )
    Table(
        "_subscriber_changes",
        metadata,
        Column("id", Text, nullable=False),
        _ts("occurred_at", nullable=False),
        Column("_event_key", KEY, nullable=False),
        comment="Transformed events whose subscriber snapshot is not merged into subscribers yet.",
    )
    Table(
        "_forwarding",
        metadata,
        Column("singleton", Boolean, primary_key=True, server_default=true()),
        _ts("enabled_at", nullable=False, server_default=func.now()),
        _ts("off_since"),
        Column("pruned_sent", BigInteger, nullable=False, server_default="0"),
        CheckConstraint("singleton", name="ck__forwarding_singleton"),
        comment="One row once forwarding to Segment was first turned on; off_since is set while it "
        "is turned off (drip-loader emit --off).",
    )
    Table(
        "_rejects",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("_load_id", Text, nullable=False),
        _ts("rejected_at", nullable=False, server_default=func.now()),
        Column("reason", Text, nullable=False),
        Column("origin", Text, nullable=False),
        Column("raw_text", Text, nullable=False),
        Column("raw_bytes", LargeBinary),
        Column("raw_size", BigInteger, nullable=False),
        Column("raw_sha256", Text, nullable=False),
        Column(
            "first_reason",
            Text,
            comment="The reason it was first rejected with, once a retry re-validated it "
            "(NULL before: reason is then the first).",
        ),
        _ts(
            "landed_at",
            comment="When drip-loader rejects retry landed it (NULL while it is still rejected).",
        ),
        Column(
            "landed_load_id",
            Text,
            comment="The retry run that landed it (the _load_id of its row in _raw_events).",
        ),
        UniqueConstraint("raw_sha256", "origin", name="uq__rejects_raw_origin"),
        Index("ix__rejects_rejected_at", "rejected_at"),
        comment="Records that could not be mapped, with the reason and where they came from.",
    )
    Table(
        "_reject_retries",
        metadata,
        # No foreign key: _rejects stays a table people may empty by hand (TRUNCATE).
        Column("reject_id", BigInteger, primary_key=True, comment="_rejects.id"),
        Column("load_id", Text, primary_key=True, comment="The retry run."),
        _ts("retried_at", nullable=False, server_default=func.now()),
        Column("outcome", Text, nullable=False),
        Column("reason", Text, comment="Why it is still rejected (NULL when it landed)."),
        CheckConstraint("outcome IN ('landed', 'rejected')", name="ck__reject_retries_outcome"),
        comment="Every re-validation of a reject by drip-loader rejects retry, and its outcome.",
    )
    Table(
        "_runs",
        metadata,
        Column("load_id", Text, primary_key=True),
        Column("command", Text, nullable=False),
        Column("status", Text, nullable=False),
        _ts("started_at", nullable=False, server_default=func.now()),
        _ts("finished_at"),
        Column("sources", Text),
        Column("counts", JSONB),
        Column("error", Text),
        comment="One row per load/transform run: what it read and what it added.",
    )
    Table(
        "_outbox",
        metadata,
        Column("id", Text, primary_key=True),
        # the event's time: the claim finds its row in its month's partition
        _ts("timestamp", nullable=False),
        Column("status", Text, nullable=False, server_default="pending"),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text),
        _ts("queued_at", nullable=False, server_default=func.now()),
        _ts("attempted_at"),
        _ts("sent_at"),
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="ck__outbox_status"),
        Index("ix__outbox_pending", "queued_at", "id", postgresql_where=text("status = 'pending'")),
        Index("ix__outbox_sent", "sent_at", postgresql_where=text("status = 'sent'")),
        comment="Forwarding to Segment: one row per email event; sent once Segment accepted it.",
    )
    Table(
        "_archives",
        metadata,
        Column("month", Date, primary_key=True),
        Column("part", Integer, primary_key=True),
        Column("raw_file", Text),
        Column("raw_events", BigInteger, nullable=False, server_default="0"),
        Column("raw_sha256", Text),
        Column("rejects_file", Text),
        Column("rejects", BigInteger, nullable=False, server_default="0"),
        Column("rejects_sha256", Text),
        _ts("started_at", nullable=False, server_default=func.now()),
        # NULL while the run that writes the files has not dropped the rows yet
        _ts("archived_at"),
        comment="Raw months moved out to gzip NDJSON files by drip-loader archive "
        "(checked before their rows were dropped; archived_at NULL: not finished yet).",
    )
    Table(
        "_imports",
        metadata,
        Column("source_schema", Text, primary_key=True),
        Column("table_name", Text, primary_key=True),
        _ts("cutoff", nullable=False),
        Column("cutoff_reason", Text, nullable=False),
        _ts("last_timestamp"),
        Column("last_id", KEY),
        Column("rows_read", BigInteger, nullable=False, server_default="0"),
        Column("rows_added", BigInteger, nullable=False, server_default="0"),
        _ts("started_at", nullable=False, server_default=func.now()),
        _ts("finished_at"),
        comment="History copied from a Segment-made schema by drip-loader import-segment: per "
        "source table, the cutoff, the last (timestamp, id) copied and the rows added.",
    )
    for resource in RESOURCES.values():
        drip_table(metadata, resource)
    return metadata
