"""Time-ordered storage: one partition per UTC month of every event table (spec §5).

``_raw_events`` (by ``occurred_at``), ``tracks`` and every collection table (by
``timestamp``, the same instant) are range-partitioned by month of the event's own time,
in UTC, with primary keys that lead with it: ``(occurred_at, _event_key)`` and
``(timestamp, id)``.  The partition of table ``T`` for October 2026 is ``T_p202610``, with
bounds ``['2026-10-01 00:00+00', '2026-11-01 00:00+00')``.  A time-led key keeps every
insert at the recent edge of a small index, where a hash-led one dirtied a random page of an
index that only grew (and logged the whole page after each checkpoint).

Uniqueness: the id of spec §4 hashes the event's time, so one id comes with one
``occurred_at`` only, and a unique ``(occurred_at, id)`` is a unique ``id``, across
partitions too.  The same holds for every row the loader writes; a row whose id is not
computed from its time (written by another tool) is unique by ``(timestamp, id)`` only.

There is no DEFAULT partition: attaching a month would then have to scan it under lock, and
fail if it held a row of that month.  Instead every writer calls :func:`ensure_partitions`
with the months of the rows it is about to write, before the transaction that writes them:
missing partitions are created in a short transaction of their own, under an advisory lock
(concurrent loaders and ``serve`` create a month once), by creating the month's table and
attaching it, which leaves the parent open to readers and writers.  Months known to exist
are cached per process, so the common case costs no query.  A write that still finds no
partition (someone dropped one meanwhile) is told apart by :func:`missing_partition`; the
writer then calls :func:`forget_partitions` and tries again.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from datetime import UTC, date, datetime
from string import Template

from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from ..domain.registry import COLLECTIONS
from ..errors import DatabaseError
from .db import sqlstate
from .sqlfiles import read_sql

PARTITIONED: dict[str, str] = {
    "_raw_events": "occurred_at",
    "tracks": "timestamp",
    **{c.name: "timestamp" for c in COLLECTIONS},
}
"""Every time-partitioned table and the column it is partitioned by (the event's time)."""

_QUOTE = postgresql.dialect().identifier_preparer.quote  # type: ignore[no-untyped-call]
_NAME = re.compile(r"(?P<table>.+)_p(?P<year>[0-9]{4})(?P<month>[0-9]{2})")

_known: dict[tuple[str, str], set[date]] = {}
"""(database, schema) -> months whose partitions exist in every table (this process)."""
_known_lock = threading.Lock()


def month_of(when: date) -> date:
    """The first day of the month holding ``when``; a datetime is taken in UTC (naive: UTC)."""
    if isinstance(when, datetime) and when.tzinfo is not None:
        when = when.astimezone(UTC)
    return date(when.year, when.month, 1)


def partition_name(table: str, month: date) -> str:
    """The partition of ``table`` for ``month``: ``tracks_p202610``."""
    return f"{table}_p{month.year:04d}{month.month:02d}"


def month_bounds(month: date) -> tuple[str, str]:
    """The bounds of ``month``'s partitions as timestamptz literals: its first instant and
    the next month's, in UTC."""
    year, number = (month.year + 1, 1) if month.month == 12 else (month.year, month.month + 1)
    return (
        f"{month.year:04d}-{month.month:02d}-01 00:00:00+00",
        f"{year:04d}-{number:02d}-01 00:00:00+00",
    )


def ensure_partitions(
    bind: Engine | Connection, *, schema: str, months: Iterable[date]
) -> list[str]:
    """Make sure every time-partitioned table of ``schema`` has a partition for each month.

    Call it before the transaction that writes rows of those months (with a connection,
    outside any transaction): missing partitions are created and committed in a short
    transaction of their own.  Safe with concurrent callers in other processes; months
    already seen by this process cost nothing.

    Args:
        bind: the warehouse database, or a connection not in a transaction.
        schema: the warehouse schema (validated).
        months: any date in each month (see :func:`month_of`).

    Returns:
        The partitions created (empty when they all existed).

    Raises:
        DatabaseError: a table of a partition's name exists but is not a partition (the
            message says which); or the database failed.
        ValueError: ``bind`` is a connection inside a transaction.
    """
    wanted = unknown_months(bind, schema=schema, months=months)
    if not wanted:
        return []
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            created = _ensure(conn, schema, wanted)
    else:
        if bind.in_transaction():
            raise ValueError(
                "ensure_partitions needs a connection outside a transaction: it commits the "
                "partitions it creates before the rows of their months are written"
            )
        created = _ensure(bind, schema, wanted)
    with _known_lock:
        _known.setdefault(_cache_key(bind, schema), set()).update(wanted)
    return created


def unknown_months(bind: Engine | Connection, *, schema: str, months: Iterable[date]) -> set[date]:
    """The months among ``months`` this process has not seen partitions for (no query):
    whether :func:`ensure_partitions` would have to ask the database."""
    wanted = {month_of(m) for m in months}
    with _known_lock:
        return wanted - _known.get(_cache_key(bind, schema), set())


def forget_partitions(bind: Engine | Connection, *, schema: str) -> None:
    """Forget which months this process knows to exist in ``schema`` (after partitions were
    dropped, or a write found none): the next :func:`ensure_partitions` asks the database."""
    with _known_lock:
        _known.pop(_cache_key(bind, schema), None)


def missing_partition(exc: BaseException) -> bool:
    """Whether ``exc`` is Postgres finding no partition for a row (one was dropped, or a table
    came without its months): :func:`forget_partitions`, then ensure and write again."""
    return sqlstate(exc) == "23514" and "no partition of relation" in str(exc)


def partition_months(bind: Engine | Connection, *, schema: str) -> dict[str, list[date]]:
    """The months each time-partitioned table of ``schema`` has a partition for, in order."""
    query = text(read_sql("partitions/months.sql"))
    params = {"schema": schema, "tables": list(PARTITIONED)}
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            rows = conn.execute(query, params).all()
    else:
        rows = bind.execute(query, params).all()
    found: dict[str, list[date]] = {table: [] for table in PARTITIONED}
    for table, partition in rows:
        named = _NAME.fullmatch(str(partition))
        if named is not None and named["table"] == table:
            found[str(table)].append(date(int(named["year"]), int(named["month"]), 1))
    return found


def is_partition_name(name: str) -> bool:
    """Whether ``name`` is the name of a monthly partition of a time-partitioned table."""
    named = _NAME.fullmatch(name)
    return named is not None and named["table"] in PARTITIONED


def _cache_key(bind: Engine | Connection, schema: str) -> tuple[str, str]:
    return bind.engine.url.render_as_string(hide_password=True), schema


def _ensure(conn: Connection, schema: str, months: set[date]) -> list[str]:
    names = {
        partition_name(table, month): (table, month)
        for month in sorted(months)
        for table in PARTITIONED
    }
    existing = text(read_sql("partitions/existing.sql"))
    params = {"schema": schema, "names": list(names)}
    with conn.begin():
        present: set[str] = set(conn.execute(existing, params).scalars())
    if present.issuperset(names):
        return []
    created: list[str] = []
    with conn.begin():
        conn.execute(text(read_sql("partitions/lock.sql")), {"schema": schema})
        present = set(conn.execute(existing, params).scalars())  # another caller's, meanwhile
        create = Template(read_sql("partitions/create.sql"))
        attach = Template(read_sql("partitions/attach.sql"))
        for name, (table, month) in names.items():
            if name in present:
                continue
            parent, partition = (
                f"{_QUOTE(schema)}.{_QUOTE(table)}",
                f"{_QUOTE(schema)}.{_QUOTE(name)}",
            )
            taken = conn.execute(select(func.to_regclass(partition))).scalar()
            if taken is not None:
                raise DatabaseError(
                    f"table {schema}.{name} exists but is not a partition of {schema}.{table}: "
                    f"rename or drop it (rows of {month:%Y-%m} are stored in a partition of "
                    "that name), then run again"
                )
            # the literals hold ':' (a bind marker to text()): escaped
            low, high = (f"'{bound}'".replace(":", "\\:") for bound in month_bounds(month))
            conn.execute(text(create.substitute(partition=partition, parent=parent)))
            conn.execute(
                text(attach.substitute(parent=parent, partition=partition, low=low, high=high))
            )
            created.append(name)
    return created
