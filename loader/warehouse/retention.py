"""Retention of what is done: sent ``_outbox`` rows and old ``_runs`` rows.

Forwarding deletes the rows Segment accepted longer ago than the outbox window at the end
of every run (:func:`prune_outbox`); ``drip-loader prune`` (a systemd timer) applies the
same window, and the window of ``_runs``.  Both delete in batches of :data:`PRUNE_BATCH`
rows, a transaction each: a backlog of millions never makes one long transaction, and a
kill keeps what was deleted before it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine

from ..config import format_duration
from . import migrate
from .db import set_search_path, translating
from .runs import LOCK_CLASS
from .sqlfiles import read_sql

PRUNE_BATCH = 10_000
"""Rows deleted per transaction."""


def _prune(
    conn: Connection,
    statement: str,
    params: dict[str, Any],
    *,
    dry_run: bool,
    limit: int,
    on_batch: Callable[[int], None] | None,
) -> int:
    """Run a ``sql/retention`` statement batch after batch until it finds fewer than
    ``limit`` rows; with ``dry_run``, once, without a limit.  ``conn`` has no transaction."""
    query = text(read_sql(statement))
    total = 0
    while True:
        with conn.begin():
            row = conn.execute(
                query, {**params, "dry_run": dry_run, "limit": None if dry_run else limit}
            ).one()
        done = int(row.found if dry_run else row.deleted)
        total += done
        if on_batch is not None and done:
            on_batch(done)
        if dry_run or row.found < limit:
            return total


def cutoff(conn: Connection, keep: timedelta) -> datetime:
    """The database's now minus ``keep``, in UTC: rows older than this are pruned."""
    before = conn.execute(select(func.now() - keep)).scalar_one()
    assert isinstance(before, datetime)
    return before.astimezone(UTC)


def prune_outbox(
    conn: Connection,
    *,
    before: datetime,
    dry_run: bool = False,
    limit: int = PRUNE_BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Delete the ``_outbox`` rows Segment accepted before ``before`` (see
    ``sql/retention/prune_outbox.sql`` for the rows kept while forwarding is off).

    ``conn`` has its search path on the warehouse schema and no transaction open.

    Returns:
        The rows deleted (with ``dry_run``: that would be).
    """
    return _prune(
        conn,
        "retention/prune_outbox.sql",
        {"before": before},
        dry_run=dry_run,
        limit=limit,
        on_batch=on_batch,
    )


def prune_runs(
    conn: Connection,
    *,
    before: datetime,
    dry_run: bool = False,
    limit: int = PRUNE_BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Delete the ``_runs`` rows that started before ``before``, except the newest
    run of each command and runs still going (``sql/retention/prune_runs.sql``).

    Returns:
        The rows deleted (with ``dry_run``: that would be).
    """
    return _prune(
        conn,
        "retention/prune_runs.sql",
        {"before": before, "lock_class": LOCK_CLASS},
        dry_run=dry_run,
        limit=limit,
        on_batch=on_batch,
    )


@dataclass(frozen=True)
class PruneReport:
    """What ``drip-loader prune`` deleted (or, with ``dry_run``, would delete)."""

    schema: str
    dry_run: bool
    runs: int
    """``_runs`` rows."""
    runs_before: datetime
    """Runs that started before this were pruned."""
    runs_window: timedelta
    outbox: int
    """Sent ``_outbox`` rows."""
    outbox_before: datetime
    """Rows Segment accepted before this were pruned."""
    outbox_window: timedelta
    seconds: float

    def lines(self) -> list[str]:
        """The report as ``prune`` prints it."""
        verb = "Would delete" if self.dry_run else "Deleted"
        return [
            f"{verb} {self.runs:,} run(s) from {self.schema}._runs started before "
            f"{self.runs_before:%Y-%m-%d %H:%M:%S} UTC (older than "
            f"{format_duration(self.runs_window)}; the newest run of each command is kept).",
            f"{verb} {self.outbox:,} sent row(s) from {self.schema}._outbox sent before "
            f"{self.outbox_before:%Y-%m-%d %H:%M:%S} UTC (older than "
            f"{format_duration(self.outbox_window)}).",
        ]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values (``--json``)."""
        values = asdict(self)
        for name in ("runs_before", "outbox_before"):
            values[name] = values[name].isoformat()
        for name in ("runs_window", "outbox_window"):
            values[name] = format_duration(values[name])
        return values


def prune(
    engine: Engine,
    *,
    schema: str,
    runs_older_than: timedelta,
    outbox_older_than: timedelta,
    dry_run: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> PruneReport:
    """``drip-loader prune``: delete old ``_runs`` rows and old sent ``_outbox`` rows.

    Args:
        engine: the warehouse database.
        schema: warehouse schema (validated).
        runs_older_than: runs that started longer ago are deleted (the newest of each
            command and runs still going stay).
        outbox_older_than: sent outbox rows Segment accepted longer ago are deleted.
        dry_run: count only.
        on_batch: called with the rows of each batch deleted.

    Raises:
        ConfigError: the schema is not at the newest revision.
        DatabaseError: the database failed; batches committed before stay deleted.
    """
    migrate.require_head(engine, schema=schema, then="run `drip-loader migrate` first")
    started = time.perf_counter()
    with translating(), engine.connect() as conn:
        set_search_path(conn, schema)
        runs_before = cutoff(conn, runs_older_than)
        outbox_before = cutoff(conn, outbox_older_than)
        conn.commit()  # the batches are transactions of their own
        runs = prune_runs(conn, before=runs_before, dry_run=dry_run, on_batch=on_batch)
        outbox = prune_outbox(conn, before=outbox_before, dry_run=dry_run, on_batch=on_batch)
    return PruneReport(
        schema=schema,
        dry_run=dry_run,
        runs=runs,
        runs_before=runs_before,
        runs_window=runs_older_than,
        outbox=outbox,
        outbox_before=outbox_before,
        outbox_window=outbox_older_than,
        seconds=round(time.perf_counter() - started, 3),
    )
