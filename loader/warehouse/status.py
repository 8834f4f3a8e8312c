"""What is in the warehouse: collections on, rows per table, pending events, rejects,
forwarding, last runs (the ``status`` command's data, as a typed :class:`WarehouseStatus`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection, Engine

from ..domain.drip_resources import RESOURCES, SYNC_COMMAND
from ..domain.registry import COLLECTIONS, DEFAULT_ON
from ..results import Record
from . import migrate
from .db import translating
from .mapping import in_order
from .runs import is_alive
from .storage import storage_summary
from .tables import build_metadata


@dataclass(frozen=True)
class CollectionsOn:
    """Which collections are mapped into tables (revision 0005 on)."""

    on: tuple[str, ...]
    off: tuple[str, ...]


@dataclass(frozen=True)
class Forwarding:
    """The Segment outbox (revision 0003 on)."""

    forwarded: int
    pending: int
    failed: int
    on: bool
    """Whether transforms queue events for Segment (the first ``emit`` turns it on)."""


@dataclass(frozen=True)
class RunLine:
    """One row of ``_runs``, its status checked against the run's lock."""

    load_id: str
    command: str
    status: str
    """As recorded, except :data:`GONE` for a ``running`` run whose process is gone."""
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, Any] | None
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "load_id": self.load_id,
            "command": self.command,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": _iso(self.finished_at),
            "counts": self.counts,
            "error": self.error,
        }


@dataclass(frozen=True)
class LastSync:
    """The last ``drip sync`` run."""

    started_at: datetime
    finished_at: datetime | None
    status: str
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "finished_at": _iso(self.finished_at),
            "status": self.status,
            "error": self.error,
        }


@dataclass(frozen=True)
class DripSyncStatus:
    """The last ``drip sync`` (None when none ran yet) and the rows Drip lists now, per table."""

    last: LastSync | None
    rows: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {"last": None if self.last is None else self.last.as_dict(), "rows": self.rows}

    def line(self) -> str:
        """The ``Drip sync:`` line of ``status``."""
        rows = ", ".join(f"{table} {n:,}" for table, n in self.rows.items())
        if self.last is None:
            return f"Drip sync: never (run `drip-loader drip sync`); {rows}"
        last = self.last
        state = last.status + (f" ({last.error})" if last.error else "")
        return f"Drip sync: {last.started_at.isoformat()[:19]} {state}; {rows}"


@dataclass(frozen=True)
class WarehouseStatus(Record):
    """What ``status`` shows.  Facts of later revisions are None on an older schema; all
    but ``schema``, ``revision`` and ``head`` are empty when it is not migrated at all."""

    schema: str
    revision: str | None
    """The schema's revision; None: not migrated."""
    head: str
    """The newest revision this version knows."""
    collections: CollectionsOn | None = None
    tables: dict[str, int] = field(default_factory=dict)
    """Rows per table: ``tracks``, the collections shown, ``subscribers``."""
    raw_events: int = 0
    pending: int = 0
    """Landed events not transformed yet."""
    rejects: int = 0
    subscribers_to_merge: int | None = None
    """Subscriber snapshots queued by a run that stopped before merging them."""
    segment: Forwarding | None = None
    drip_sync: DripSyncStatus | None = None
    last_runs: tuple[RunLine, ...] = ()
    storage: dict[str, Any] | None = None
    """Bytes per event, partitions and archived months (revision 0009 on)."""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values; facts the schema does not have yet are left out."""
        values: dict[str, Any] = {
            "schema": self.schema,
            "revision": self.revision,
            "head": self.head,
        }
        if self.revision is None:
            return values
        if self.collections is not None:
            values["collections"] = {
                "on": list(self.collections.on),
                "off": list(self.collections.off),
            }
        values["tables"] = dict(self.tables)
        values["raw_events"] = self.raw_events
        values["pending"] = self.pending
        values["rejects"] = self.rejects
        if self.subscribers_to_merge is not None:
            values["subscribers_to_merge"] = self.subscribers_to_merge
        if self.segment is not None:
            values["segment"] = {
                "forwarded": self.segment.forwarded,
                "pending": self.segment.pending,
                "failed": self.segment.failed,
                "on": self.segment.on,
            }
        if self.drip_sync is not None:
            values["drip_sync"] = self.drip_sync.as_dict()
        values["last_runs"] = [run.as_dict() for run in self.last_runs]
        if self.storage is not None:
            values["storage"] = self.storage
        return values

    def lines(self) -> list[str]:
        """What ``status`` prints for a person."""
        if self.revision is None:
            return [
                f"Schema {self.schema!r} is not migrated yet: run `drip-loader migrate` or "
                "`drip-loader load`."
            ]
        lines = [f"Schema {self.schema!r} at revision {self.revision} (head {self.head})"]
        if self.collections is not None:
            on, off = self.collections.on, self.collections.off
            lines.append(
                f"  collections on: {len(on)} of {len(on) + len(off)} ({', '.join(on) or 'none'})"
            )
        lines += [f"  {table:<24}{rows:>12,}" for table, rows in self.tables.items()]
        lines.append(f"  {'raw events':<24}{self.raw_events:>12,}")
        lines.append(f"  {'pending transform':<24}{self.pending:>12,}")
        lines.append(f"  {'rejects':<24}{self.rejects:>12,}")
        if self.subscribers_to_merge:  # left by a run that stopped before its end
            lines.append(f"  {'subscribers to merge':<24}{self.subscribers_to_merge:>12,}")
        if self.segment is not None and not self.segment.on:
            lines.append(
                f"  {'forwarding to Segment':<24}{'off':>12}  "
                "(the first `drip-loader emit` turns it on)"
            )
        elif self.segment is not None:
            lines.append(f"  {'forwarded to Segment':<24}{self.segment.forwarded:>12,}")
            lines.append(f"  {'pending for Segment':<24}{self.segment.pending:>12,}")
            lines.append(f"  {'failed for Segment':<24}{self.segment.failed:>12,}")
        if self.drip_sync is not None:
            lines.append(self.drip_sync.line())
        lines.append("Last runs:")
        for run in self.last_runs:
            counts = run.counts or {}
            lines.append(
                f"  {run.started_at.isoformat()[:19]}  {run.status:<10} "
                f"read {counts.get('read', 0):,}, landed {counts.get('landed', 0):,}, "
                f"rejected {counts.get('rejected', 0):,}"
                + (f"  ({run.error})" if run.error else "")
            )
        if self.storage is not None:  # its own section: loader.warehouse.storage renders it
            from .storage import storage_lines

            lines += storage_lines(self.storage)
        return lines


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def warehouse_status(engine: Engine, *, schema: str, runs: int = 5) -> WarehouseStatus:
    """Counts and recent runs of ``schema``."""
    revision = migrate.current_revision(engine, schema=schema)
    head = migrate.head_revision()
    if revision is None:
        return WarehouseStatus(schema=schema, revision=None, head=head)
    tables = build_metadata(schema).tables
    with translating(), engine.connect() as conn:

        def count(name: str) -> int:
            return int(
                conn.execute(
                    select(func.count()).select_from(tables[f"{schema}.{name}"])
                ).scalar_one()
            )

        def exists(name: str) -> bool:  # tables of later revisions
            return conn.execute(select(func.to_regclass(f"{schema}.{name}"))).scalar() is not None

        shown = DEFAULT_ON
        collections = None
        if exists("_collections"):  # revision 0005: which collections are on
            settings = tables[f"{schema}._collections"]
            enabled: Iterable[str] = conn.execute(
                select(settings.c.name).where(settings.c.enabled)
            ).scalars()
            on = in_order(enabled)
            collections = CollectionsOn(on, tuple(c.name for c in COLLECTIONS if c.name not in on))
            shown = in_order({*DEFAULT_ON, *on})
        segment = None
        # Forwarding to Segment (loader.pipeline.emit); the outbox is missing below 0003.
        if exists("_outbox"):
            outbox = tables[f"{schema}._outbox"]
            query = select(outbox.c.status, func.count()).group_by(outbox.c.status)
            by_status = {row[0]: int(row[1]) for row in conn.execute(query)}
            segment = Forwarding(
                forwarded=by_status.get("sent", 0),
                pending=by_status.get("pending", 0),
                failed=by_status.get("failed", 0),
                # below revision 0004 every transform queued events: forwarding was always on
                on=not exists("_forwarding")
                or _forwarding_on(conn, tables[f"{schema}._forwarding"]),
            )
        run_table = tables[f"{schema}._runs"]
        recent = conn.execute(
            select(run_table).order_by(run_table.c.started_at.desc()).limit(runs)
        ).mappings()
        return WarehouseStatus(
            schema=schema,
            revision=revision,
            head=head,
            collections=collections,
            tables={name: count(name) for name in ("tracks", *shown, "subscribers")},
            raw_events=count("_raw_events"),
            pending=count("_pending"),
            rejects=count("_rejects"),
            subscribers_to_merge=(
                count("_subscriber_changes") if exists("_subscriber_changes") else None
            ),
            segment=segment,
            drip_sync=drip_sync_status(conn, schema=schema) if exists("drip_subscribers") else None,
            last_runs=tuple(
                RunLine(
                    load_id=r["load_id"],
                    command=r["command"],
                    status=_status(conn, r["load_id"], r["status"]),
                    started_at=r["started_at"],
                    finished_at=r["finished_at"],
                    counts=r["counts"],
                    error=r["error"],
                )
                for r in recent
            ),
            # revision 0009: the storage section (loader.warehouse.storage)
            storage=storage_summary(engine, schema=schema).as_dict()
            if exists("_archives")
            else None,
        )


def _forwarding_on(conn: Connection, forwarding: Table) -> bool:
    """Turned on once and not turned off since (``emit --off`` sets ``off_since``)."""
    query = select(func.count()).select_from(forwarding).where(forwarding.c.off_since.is_(None))
    return int(conn.execute(query).scalar_one()) > 0


GONE = "not running (process gone)"
"""The status shown for a run recorded ``running`` whose process no longer holds its lock
(killed outright: it could not record its end)."""


def _status(conn: Connection, load_id: str, recorded: str) -> str:
    if recorded == "running" and not is_alive(conn, load_id):
        return GONE
    return recorded


def drip_sync_status(conn: Connection, *, schema: str) -> DripSyncStatus:
    """The last ``drip sync`` (time, status, error) and the rows Drip lists now, per table."""
    tables = build_metadata(schema).tables
    runs = tables[f"{schema}._runs"]
    last = (
        conn.execute(
            select(runs.c.started_at, runs.c.finished_at, runs.c.status, runs.c.error)
            .where(runs.c.command == SYNC_COMMAND)
            .order_by(runs.c.started_at.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    rows: dict[str, int] = {}
    for resource in RESOURCES.values():
        table = tables[f"{schema}.{resource.table}"]
        query = select(func.count()).select_from(table).where(table.c.deleted_at.is_(None))
        rows[resource.table] = int(conn.execute(query).scalar_one())
    return DripSyncStatus(
        last=None
        if last is None
        else LastSync(last["started_at"], last["finished_at"], last["status"], last["error"]),
        rows=rows,
    )
