"""The ``_imports`` ledger (revision 0011): what ``import-segment`` copied from a Segment-made
schema, per source table.

A row per (source schema, table) holds the cutoff (nothing at or after it is copied), why
that cutoff, the last key copied (rows are copied in ``(timestamp, id)`` order, so a killed
run resumes after it) and the rows read and added.  The row is written in the transaction
of each batch it counts, so it always says exactly what is in the tables.
:func:`segment_rows` answers ``status``'s question: how many rows came from Segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import Table, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Engine

from .db import translating
from .tables import build_metadata


@cache
def imports_table(schema: str) -> Table:
    """``_imports`` of ``schema`` (built once per schema: a batch updates it every time)."""
    return build_metadata(schema).tables[f"{schema}._imports"]


@dataclass(frozen=True)
class LedgerRow:
    """One ``_imports`` row."""

    table: str
    cutoff: datetime
    cutoff_reason: str
    last_timestamp: datetime | None
    last_id: str | None
    rows_read: int
    rows_added: int
    finished: bool


def read_ledger(conn: Connection, *, schema: str, source: str) -> dict[str, LedgerRow]:
    """The rows of ``source``'s import into ``schema``, by table."""
    t = imports_table(schema)
    rows = conn.execute(select(t).where(t.c.source_schema == source)).mappings()
    return {
        r["table_name"]: LedgerRow(
            table=r["table_name"],
            cutoff=r["cutoff"],
            cutoff_reason=r["cutoff_reason"],
            last_timestamp=r["last_timestamp"],
            last_id=r["last_id"],
            rows_read=int(r["rows_read"]),
            rows_added=int(r["rows_added"]),
            finished=r["finished_at"] is not None,
        )
        for r in rows
    }


def start_table(
    conn: Connection,
    *,
    schema: str,
    source: str,
    table: str,
    cutoff: datetime,
    reason: str,
    last_timestamp: datetime | None,
    last_id: str | None,
) -> None:
    """Record ``table``'s cutoff and the key its copy goes on after, at the start of a run
    (a new row, or the recorded one changed: a later cutoff, tracks rewound).  A change
    reopens a finished table."""
    t = imports_table(schema)
    stmt = insert(t).values(
        source_schema=source,
        table_name=table,
        cutoff=cutoff,
        cutoff_reason=reason,
        last_timestamp=last_timestamp,
        last_id=last_id,
    )
    new = stmt.excluded
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[t.c.source_schema, t.c.table_name],
            set_={
                "cutoff": new.cutoff,
                "cutoff_reason": new.cutoff_reason,
                "last_timestamp": new.last_timestamp,
                "last_id": new.last_id,
                "finished_at": None,
            },
            where=tuple_(t.c.cutoff, t.c.last_timestamp, t.c.last_id).is_distinct_from(
                tuple_(new.cutoff, new.last_timestamp, new.last_id)
            ),
        )
    )


def advance(
    conn: Connection,
    *,
    schema: str,
    source: str,
    table: str,
    last_timestamp: datetime,
    last_id: str,
    read: int,
    added: int,
) -> None:
    """Count a batch of ``table`` and move its last key (in the batch's transaction)."""
    t = imports_table(schema)
    conn.execute(
        update(t)
        .where(t.c.source_schema == source, t.c.table_name == table)
        .values(
            last_timestamp=last_timestamp,
            last_id=last_id,
            rows_read=t.c.rows_read + read,
            rows_added=t.c.rows_added + added,
        )
    )


def count_added(conn: Connection, *, schema: str, source: str, table: str, added: int) -> None:
    """Count ``added`` more rows in ``table`` (tracks rows made for a collection's batch)."""
    if not added:
        return
    t = imports_table(schema)
    conn.execute(
        update(t)
        .where(t.c.source_schema == source, t.c.table_name == table)
        .values(rows_added=t.c.rows_added + added)
    )


def finish(conn: Connection, *, schema: str, source: str, table: str) -> None:
    """Mark ``table`` of ``source`` copied up to its cutoff."""
    t = imports_table(schema)
    conn.execute(
        update(t)
        .where(t.c.source_schema == source, t.c.table_name == table, t.c.finished_at.is_(None))
        .values(finished_at=func.now())
    )


@dataclass(frozen=True)
class SegmentRows:
    """How many rows of a warehouse came from Segment (``import-segment``)."""

    events: int
    """Events copied: rows added to ``tracks`` (every event has its row there)."""
    by_table: dict[str, int]
    """Rows added per table (tracks and the email collections)."""
    sources: tuple[str, ...]
    """The Segment-made schemas they were copied from."""
    finished: bool
    """Whether every table of every import was copied up to its cutoff (False: an import
    stopped early; running it again resumes it)."""


def segment_rows(engine: Engine, *, schema: str) -> SegmentRows | None:
    """What ``status`` says about history copied from Segment into ``schema``: None when
    nothing was ever imported (or the schema is below revision 0011).

    Read from the ledger, which every batch updates in its own transaction: no table is
    scanned.
    """
    with translating(), engine.connect() as conn:
        if conn.execute(select(func.to_regclass(f"{schema}._imports"))).scalar() is None:
            return None
        t = imports_table(schema)
        rows = conn.execute(
            select(
                t.c.source_schema, t.c.table_name, t.c.rows_added, t.c.finished_at.is_not(None)
            ).order_by(t.c.source_schema, t.c.table_name)
        ).all()
    if not rows:
        return None
    by_table: dict[str, int] = {}
    for row in rows:
        name = str(row.table_name)
        by_table[name] = by_table.get(name, 0) + int(row.rows_added)
    return SegmentRows(
        events=by_table.get("tracks", 0),
        by_table=by_table,
        sources=tuple(dict.fromkeys(r[0] for r in rows)),
        finished=all(r[3] for r in rows),
    )
