"""What is in the warehouse: collections on, rows per table, pending events, rejects,
forwarding, last runs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection, Engine

from ..domain.drip_resources import RESOURCES, SYNC_COMMAND
from ..domain.registry import COLLECTIONS, DEFAULT_ON
from . import migrate
from .db import translating
from .mapping import in_order
from .runs import is_alive
from .storage import storage_summary
from .tables import build_metadata


def warehouse_status(engine: Engine, *, schema: str, runs: int = 5) -> dict[str, Any]:
    """Counts and recent runs of ``schema``, ready to print or dump as JSON."""
    revision = migrate.current_revision(engine, schema=schema)
    status: dict[str, Any] = {
        "schema": schema,
        "revision": revision,
        "head": migrate.head_revision(),
    }
    if revision is None:
        return status
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
        if exists("_collections"):  # revision 0005: which collections are on
            settings = tables[f"{schema}._collections"]
            enabled: Iterable[str] = conn.execute(
                select(settings.c.name).where(settings.c.enabled)
            ).scalars()
            on = in_order(enabled)
            status["collections"] = {
                "on": list(on),
                "off": [c.name for c in COLLECTIONS if c.name not in on],
            }
            shown = in_order({*DEFAULT_ON, *on})
        status["tables"] = {name: count(name) for name in ("tracks", *shown, "subscribers")}
        status["raw_events"] = count("_raw_events")
        status["pending"] = count("_pending")
        status["rejects"] = count("_rejects")

        if exists("_subscriber_changes"):
            status["subscribers_to_merge"] = count("_subscriber_changes")
        # Forwarding to Segment (loader.emit); the outbox is missing below revision 0003.
        if exists("_outbox"):
            outbox = tables[f"{schema}._outbox"]
            query = select(outbox.c.status, func.count()).group_by(outbox.c.status)
            by_status = {row[0]: int(row[1]) for row in conn.execute(query)}
            status["segment"] = {
                "forwarded": by_status.get("sent", 0),
                "pending": by_status.get("pending", 0),
                "failed": by_status.get("failed", 0),
                # below revision 0004 every transform queued events: forwarding was always on
                "on": not exists("_forwarding")
                or _forwarding_on(conn, tables[f"{schema}._forwarding"]),
            }
        if exists("drip_subscribers"):
            status["drip_sync"] = drip_sync_status(conn, schema=schema)
        run_table = tables[f"{schema}._runs"]
        recent = conn.execute(
            select(run_table).order_by(run_table.c.started_at.desc()).limit(runs)
        ).mappings()
        status["last_runs"] = [
            {
                "load_id": r["load_id"],
                "command": r["command"],
                "status": _status(conn, r["load_id"], r["status"]),
                "started_at": r["started_at"].isoformat(),
                "finished_at": r["finished_at"].isoformat() if r["finished_at"] else None,
                "counts": r["counts"],
                "error": r["error"],
            }
            for r in recent
        ]
        has_archives = exists("_archives")
    if has_archives:  # revision 0009: the storage section (loader.warehouse.storage)
        status["storage"] = storage_summary(engine, schema=schema).as_dict()
    return status


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


def drip_sync_status(conn: Connection, *, schema: str) -> dict[str, Any]:
    """The last ``drip sync`` (time, status, error) and the rows Drip lists now, per table.

    ``last`` is None when no sync ran yet.
    """
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
    return {
        "last": None
        if last is None
        else {
            "started_at": last["started_at"].isoformat(),
            "finished_at": last["finished_at"].isoformat() if last["finished_at"] else None,
            "status": last["status"],
            "error": last["error"],
        },
        "rows": rows,
    }
