"""Storage facts for ``status``: bytes per event by table, partitions by month, the oldest
raw month, the months archived to files.

Bytes are all-in: heap, TOAST and every index, summed over a table's partitions
(``pg_total_relation_size``).  "Per event" divides by the events the warehouse holds
mapped: the rows of ``tracks``, one per event of the collections that are on (raw events
of collections that are off are counted in ``_raw_events``' bytes, not in the divisor).
Rows are counted exactly, one scan per table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from string import Template
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from .db import set_search_path, translating
from .partitions import PARTITIONED, partition_name
from .sqlfiles import read_sql

_QUOTE = postgresql.dialect().identifier_preparer.quote  # type: ignore[no-untyped-call]

RAW = "_raw_events"
EVENTS = "tracks"
"""The table whose rows are the events "per event" divides by."""


@dataclass(frozen=True)
class TableStorage:
    """One table (all its partitions), or one partition."""

    name: str
    rows: int
    bytes: int

    @property
    def bytes_per_row(self) -> int | None:
        return round(self.bytes / self.rows) if self.rows else None


@dataclass(frozen=True)
class MonthStorage:
    """The partitions of one month (of the event's time), per table."""

    month: date
    tables: dict[str, TableStorage]
    """Partitioned table → its partition of this month (tables with no partition left out)."""

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.tables.values())

    def rows(self, table: str) -> int:
        """Rows of ``table``'s partition of this month (0 when it has none)."""
        found = self.tables.get(table)
        return found.rows if found else 0


@dataclass(frozen=True)
class ArchivedMonth:
    """A raw month (and part) ``drip-loader archive`` moved out to files."""

    month: date
    part: int
    raw_events: int
    rejects: int
    raw_file: str | None
    rejects_file: str | None
    archived_at: datetime


@dataclass(frozen=True)
class StorageSummary:
    """What the warehouse stores and where."""

    schema: str
    events: int
    """Rows of ``tracks``: the divisor of every "per event" figure."""
    tables: list[TableStorage]
    """Every table of the schema, largest first."""
    months: list[MonthStorage]
    """Every month that has a partition, oldest first."""
    oldest_raw_month: date | None
    """The oldest month whose raw events are still in ``_raw_events``."""
    archived: list[ArchivedMonth] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.tables)

    def table(self, name: str) -> TableStorage:
        """One table's storage (zeros when the schema has no such table)."""
        return next((t for t in self.tables if t.name == name), TableStorage(name, 0, 0))

    def per_event(self, name: str | None = None) -> int | None:
        """Bytes per event of table ``name``, or of everything (None when no events)."""
        size = self.bytes if name is None else self.table(name).bytes
        return round(size / self.events) if self.events else None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values (``status --json``)."""
        return {
            "events": self.events,
            "bytes": self.bytes,
            "bytes_per_event": self.per_event(),
            "tables": {
                t.name: {
                    "rows": t.rows,
                    "bytes": t.bytes,
                    "bytes_per_event": self.per_event(t.name),
                    "bytes_per_row": t.bytes_per_row,
                }
                for t in self.tables
            },
            "months": [
                {
                    "month": m.month.strftime("%Y-%m"),
                    "bytes": m.bytes,
                    "tables": {n: {"rows": t.rows, "bytes": t.bytes} for n, t in m.tables.items()},
                }
                for m in self.months
            ],
            "oldest_raw_month": self.oldest_raw_month.strftime("%Y-%m")
            if self.oldest_raw_month
            else None,
            "archived": [
                {
                    "month": a.month.strftime("%Y-%m"),
                    "part": a.part,
                    "raw_events": a.raw_events,
                    "rejects": a.rejects,
                    "raw_file": a.raw_file,
                    "rejects_file": a.rejects_file,
                    "archived_at": a.archived_at.isoformat(),
                }
                for a in self.archived
            ],
        }

    def lines(self, *, top: int = 8) -> list[str]:
        """The ``Storage`` section of ``status`` (:func:`storage_lines`)."""
        return storage_lines(self.as_dict(), top=top)


def storage_lines(summary: dict[str, Any], *, top: int = 8) -> list[str]:
    """The ``Storage`` section of ``status`` from :meth:`StorageSummary.as_dict`: the
    ``top`` largest tables, a line per month, the oldest raw month, what is archived."""
    per_event = summary["bytes_per_event"]
    out = [
        f"Storage: {_size(summary['bytes'])} all-in for {summary['events']:,} events"
        + (f" ({per_event:,} bytes per event)" if per_event is not None else "")
    ]
    tables = [(n, t) for n, t in summary["tables"].items() if t["bytes"]]
    for name, t in sorted(tables, key=lambda item: -item[1]["bytes"])[:top]:
        out.append(
            f"  {name:<28}{_size(t['bytes']):>10}{t['rows']:>14,} rows"
            + (f"{t['bytes_per_event']:>8,} B/event" if t["bytes_per_event"] is not None else "")
        )
    if summary["months"]:
        out.append("  by month (event time):")
    for m in summary["months"]:
        rows = {n: t["rows"] for n, t in m["tables"].items()}
        out.append(
            f"    {m['month']}  raw {rows.get(RAW, 0):>12,}  tracks {rows.get(EVENTS, 0):>12,}"
            f"  {_size(m['bytes']):>10}"
        )
    out.append(f"  oldest raw month: {summary['oldest_raw_month'] or 'none'}")
    archived = summary["archived"]
    if not archived:
        out.append("  archived: none")
        return out
    months = sorted({a["month"] for a in archived})
    events = sum(a["raw_events"] for a in archived)
    span = months[0] if len(months) == 1 else f"{months[0]} to {months[-1]}"
    out.append(f"  archived: {len(months)} month(s), {span}: {events:,} raw events in files")
    return out


def _size(value: int) -> str:
    """Bytes as people read them: 812 B, 1.4 MB."""
    size = float(value)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} GB"


def _month_of_partition(table: str, name: str) -> date | None:
    suffix = name.removeprefix(f"{table}_p")
    if len(suffix) != 6 or not suffix.isdigit():
        return None
    month = date(int(suffix[:4]), int(suffix[4:]), 1) if 1 <= int(suffix[4:]) <= 12 else None
    return month if month and partition_name(table, month) == name else None


def storage_summary(engine: Engine, *, schema: str) -> StorageSummary:
    """Bytes per event by table, partitions by month with their rows and bytes, the oldest
    raw month and the archived months of ``schema`` (at revision 0009 or later).

    Raises:
        DatabaseError: the database failed.
    """
    with translating(), engine.connect() as conn:
        set_search_path(conn, schema)
        return _summary(conn, schema)


def _summary(conn: Connection, schema: str) -> StorageSummary:
    params = {"schema": schema}
    sizes: list[tuple[str, bool, int]] = [
        (str(r.name), bool(r.partitioned), int(r.bytes))
        for r in conn.execute(text(read_sql("storage/tables.sql")), params)
    ]
    rows_sql = Template(read_sql("storage/rows.sql"))
    partition_rows: dict[str, int] = {}
    tables: list[TableStorage] = []
    for name, _, size in sizes:
        counted = {
            str(r.partition): int(r.rows)
            for r in conn.execute(text(rows_sql.substitute(table=_QUOTE(name))))
        }
        partition_rows.update(counted)
        tables.append(TableStorage(name, sum(counted.values()), size))
    tables.sort(key=lambda t: (-t.bytes, t.name))
    partitioned = [t for t in PARTITIONED if any(name == t for name, _, _ in sizes)]
    by_month: dict[date, dict[str, TableStorage]] = {}
    query = text(read_sql("storage/partitions.sql"))
    for r in conn.execute(query, {**params, "tables": partitioned}):
        table, partition = str(r.table), str(r.partition)
        month = _month_of_partition(table, partition)
        if month is not None:
            by_month.setdefault(month, {})[table] = TableStorage(
                partition, partition_rows.get(partition, 0), int(r.bytes)
            )
    months = [MonthStorage(m, by_month[m]) for m in sorted(by_month)]
    archived = [
        ArchivedMonth(
            month=r.month,
            part=int(r.part),
            raw_events=int(r.raw_events),
            rejects=int(r.rejects),
            raw_file=r.raw_file,
            rejects_file=r.rejects_file,
            archived_at=r.archived_at,
        )
        for r in conn.execute(text(read_sql("storage/archived.sql")))
    ]
    events = next((t.rows for t in tables if t.name == EVENTS), 0)
    return StorageSummary(
        schema=schema,
        events=events,
        tables=tables,
        months=months,
        oldest_raw_month=next((m.month for m in months if m.rows(RAW)), None),
        archived=archived,
    )
