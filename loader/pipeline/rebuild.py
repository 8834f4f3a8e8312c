"""Rebuild: map the raw events again into ``tracks`` and the collection tables (after a
mapping fix), month by month, never deleting a row it cannot rebuild.

Rows whose raw event is not in ``_raw_events`` (months moved out by ``drip-loader
archive``, rows loaded without raw) and rows of collections that are off (rebuild maps
what is on) are kept as they are, and the report says how many and in which months.
Per month (of the event's time, one partition of each table):

- every ``tracks`` row has its raw event and every collection with rows is on: the month's
  partitions are emptied with ``TRUNCATE`` and mapped again whole (fast: no dead rows, no
  WAL per deleted row);
- otherwise: per batch, the rows of the batch's raw events are deleted by key and mapped
  again; the others stay;
- no raw partition at all (archived): the month's rows stay, untouched.

Batches of ``batch_size`` raw events commit one by one: a crash leaves a month partly
mapped, and a rerun decides again (a truncated month has only rows with raw, so it is
emptied again) and ends like one run.  Events still queued in ``_pending`` are left to
the transform.  A rebuild never queues an event for Segment: each was queued (or not,
forwarding being off) when it was first mapped, and Segment's confirmation may be gone
from the outbox since (retention).  Subscribers are merged again from the snapshots the
batches queue, refreshing rows whose latest event is still raw; rows whose latest event
is archived stay.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from string import Template
from typing import Any, Literal

from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from ..domain.registry import BY_NAME
from ..progress import QUIET, Progress
from ..results import Record
from ..warehouse.db import batch_session, retryable, translating
from ..warehouse.mapping import enabled_collections, map_params, mapping_statement
from ..warehouse.partitions import (
    ensure_partitions,
    month_bounds,
    partition_months,
    partition_name,
)
from ..warehouse.sqlfiles import read_sql
from .transform import merge_in_parallel

_QUOTE = postgresql.dialect().identifier_preparer.quote  # type: ignore[no-untyped-call]
_START = (datetime(1, 1, 1, tzinfo=UTC), "")
_ATTEMPTS = 5

How = Literal["emptied", "by key", "no raw"]


@dataclass(frozen=True)
class MonthRebuilt:
    """What rebuild did with one month."""

    month: date
    how: How
    """``emptied``: truncated and mapped again whole; ``by key``: rows with raw replaced,
    the others kept; ``no raw``: nothing to map (archived), every row kept."""
    events: int
    """Raw events mapped again."""
    kept_without_raw: int
    """Rows of ``tracks`` kept because their raw event is not in the warehouse."""
    kept_off: int
    """Rows of ``tracks`` of collections that are off, kept as they are."""


@dataclass
class RebuildReport(Record):
    """What ``drip-loader rebuild`` did."""

    months: list[MonthRebuilt] = field(default_factory=list)
    rows_added: Counter[str] = field(default_factory=Counter)
    """Rows written per table (``subscribers``: inserted, not refreshed)."""
    seconds: float = 0.0

    @property
    def events(self) -> int:
        return sum(m.events for m in self.months)

    @property
    def kept_without_raw(self) -> int:
        return sum(m.kept_without_raw for m in self.months)

    def lines(self) -> list[str]:
        """The report as ``rebuild`` prints it."""
        added = ", ".join(f"{t} {n:,}" for t, n in sorted(self.rows_added.items()))
        out = [
            f"Rebuilt {len(self.months)} month(s) from {self.events:,} raw events in "
            f"{self.seconds:.1f} s: {added or 'no rows'}"
        ]
        for m in self.months:
            line = f"  {m.month:%Y-%m}  {m.how:<8}{m.events:>12,} events mapped again"
            if m.kept_without_raw:
                line += f"; {m.kept_without_raw:,} rows kept without raw events"
            if m.kept_off:
                line += f"; {m.kept_off:,} rows of collections that are off kept"
            out.append(line)
        kept = [m for m in self.months if m.kept_without_raw]
        if kept:
            out.append(
                f"Kept {self.kept_without_raw:,} rows whose raw events are not in the warehouse "
                "(archived, or loaded without raw), in "
                + ", ".join(f"{m.month:%Y-%m}" for m in kept)
                + ": they cannot be rebuilt; `drip-loader load` of the archive brings their raw "
                "back (then rebuild again)."
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values (``--json``)."""
        return {
            "events": self.events,
            "kept_without_raw": self.kept_without_raw,
            "rows_added": dict(self.rows_added),
            "seconds": self.seconds,
            "months": [
                {
                    "month": f"{m.month:%Y-%m}",
                    "how": m.how,
                    "events": m.events,
                    "kept_without_raw": m.kept_without_raw,
                    "kept_off": m.kept_off,
                }
                for m in self.months
            ],
        }


def rebuild_tables(
    engine: Engine,
    *,
    schema: str,
    batch_size: int,
    merge_parts: int = 1,
    progress: Progress = QUIET,
) -> RebuildReport:
    """Map the raw events again, month by month (see the module for what is kept).

    Args:
        engine: the warehouse database.
        schema: warehouse schema (validated).
        batch_size: raw events mapped per transaction.
        merge_parts: connections merging subscribers at the end.
        progress: a phase per month (events), then the merge (snapshots).

    Raises:
        DatabaseError: the database failed; months and batches committed before stay done
            (run rebuild again).
    """
    started = time.perf_counter()
    report = RebuildReport()
    with translating(), engine.connect() as conn:
        batch_session(conn, schema)
        conn.commit()
        found = partition_months(conn, schema=schema)
        conn.commit()
        for month in sorted({*found["tracks"], *found["_raw_events"]}):
            progress.start(f"Rebuilding {month:%Y-%m}", None)
            if month not in found["_raw_events"]:  # archived: nothing to map, all kept
                report.months.append(_archived(conn, month))
                continue
            ensure_partitions(conn, schema=schema, months=[month])
            report.months.append(_month(conn, schema, month, batch_size, report, progress))
        progress.start("Merging subscribers", None)
        report.rows_added["subscribers"] += merge_in_parallel(
            engine, conn, schema=schema, parts=merge_parts, on_batch=progress.advance, refresh=True
        )
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _month(
    conn: Connection,
    schema: str,
    month: date,
    batch_size: int,
    report: RebuildReport,
    progress: Progress,
) -> MonthRebuilt:
    low, high = month_bounds(month)
    after = _START
    events = 0
    how: How | None = None
    kept = off = 0
    while True:
        for attempt in range(_ATTEMPTS):
            try:
                with conn.begin():
                    names = enabled_collections(conn)  # locked till the commit, as a transform
                    slugs = list(names)
                    if how is None:
                        how, kept, off = _decide(conn, schema, month, low, high, slugs)
                    upto = _batch_end(conn, low, high, after, batch_size)
                    keys = {
                        "low": low,
                        "high": high,
                        "after_time": after[0],
                        "after_key": after[1],
                        "upto_time": upto[0],
                        "upto_key": upto[1],
                    }
                    if how == "by key":
                        for table in ("tracks", *names):
                            delete = Template(read_sql("rebuild/delete_keys.sql"))
                            conn.execute(
                                text(delete.substitute(table=_QUOTE(table))),
                                {**keys, "slugs": slugs},
                            )
                    params = {**map_params(names), **keys, "queue_outbox": False}
                    row = conn.execute(mapping_statement("rebuild/head.sql", names), params)
                    counts = {k: int(v) for k, v in row.mappings().one().items()}
                break
            except sa_exc.DBAPIError as exc:
                if not retryable(exc) or attempt == _ATTEMPTS - 1:
                    raise
                if how == "emptied" and events == 0:
                    how = None  # the truncate was rolled back with the batch: decide again
        mapped = counts.pop("events")
        counts.pop("outbox", None)
        events += mapped
        report.rows_added.update({k: v for k, v in counts.items() if v})
        progress.advance(mapped)
        if upto[0] >= datetime.fromisoformat(high):
            break
        after = upto
    assert how is not None
    return MonthRebuilt(month, how, events, kept, off)


def _archived(conn: Connection, month: date) -> MonthRebuilt:
    low, high = month_bounds(month)
    with conn.begin():
        state = _state(conn, low, high, list(enabled_collections(conn)))
    return MonthRebuilt(month, "no raw", 0, state["without_raw"], state["off"])


def _state(conn: Connection, low: str, high: str, slugs: list[str]) -> dict[str, int]:
    row = conn.execute(
        text(read_sql("rebuild/month_state.sql")), {"low": low, "high": high, "slugs": slugs}
    ).one()
    return {"rows": int(row.rows), "without_raw": int(row.without_raw), "off": int(row.off)}


def _decide(
    conn: Connection, schema: str, month: date, low: str, high: str, slugs: list[str]
) -> tuple[How, int, int]:
    """Empty the month if every row can be rebuilt (then nothing is kept), else go by key."""
    tracks = f"{_QUOTE(schema)}.{_QUOTE(partition_name('tracks', month))}"
    conn.execute(text(Template(read_sql("rebuild/lock_month.sql")).substitute(partition=tracks)))
    state = _state(conn, low, high, slugs)
    if state["without_raw"] or state["off"]:
        return "by key", state["without_raw"], state["off"]
    partitions = [tracks] + [
        f"{_QUOTE(schema)}.{_QUOTE(partition_name(name, month))}"
        for name in slugs
        if name in BY_NAME
    ]
    truncate = Template(read_sql("rebuild/truncate_month.sql"))
    conn.execute(text(truncate.substitute(partitions=", ".join(partitions))))
    return "emptied", 0, 0


def _batch_end(
    conn: Connection, low: str, high: str, after: tuple[datetime, str], size: int
) -> tuple[datetime, str]:
    """The last key of the next batch, or the month's end when fewer than ``size`` are left."""
    row = conn.execute(
        text(read_sql("rebuild/batch_end.sql")),
        {
            "low": low,
            "high": high,
            "after_time": after[0],
            "after_key": after[1],
            "offset": size - 1,
        },
    ).first()
    if row is None:
        return datetime.fromisoformat(high), ""
    return row.occurred_at, str(row._event_key)
