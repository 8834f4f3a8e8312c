"""Transform: map pending landed events into the collection tables and ``tracks``, in SQL.

The statements are ``sql/transform/*.sql``, run in file-name order inside one transaction
per batch.  A batch claims rows of the ``_pending`` queue (SKIP LOCKED), so concurrent
transforms share the work and an event landed by a transaction that commits late is
simply claimed by a later batch: nothing is skipped, nothing is mapped twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from . import __version__
from .db import translating
from .events import EMAIL_EVENTS
from .sqlfiles import read_sql, sql_files


@dataclass
class TransformResult:
    """What a transform run did."""

    events: int = 0
    """Pending events claimed (email and other Drip events alike)."""
    batches: int = 0
    rows_added: Counter[str] = field(default_factory=Counter)
    """Rows inserted per table."""


def event_map_params() -> dict[str, Any]:
    """The event map of :mod:`loader.events` as arrays, bound into the claim statement."""
    events = list(EMAIL_EVENTS.values())
    return {
        "drip_events": [e.drip_event for e in events],
        "slugs": [e.slug for e in events],
        "names": [e.name for e in events],
        "scopes": [e.unsubscribe_scope for e in events],
        "library_version": __version__,
    }


def set_search_path(conn: Connection, schema: str) -> None:
    """Make the statements of ``sql/`` (which use bare table names) address ``schema``."""
    conn.execute(text("SELECT set_config('search_path', :schema, false)"), {"schema": schema})


def transform_batch(conn: Connection, *, batch_size: int) -> tuple[int, Counter[str]]:
    """Run the transform statements once on ``conn`` (caller owns the transaction).

    Returns:
        The number of events claimed and the rows added per table.
    """
    params = {**event_map_params(), "batch_size": batch_size}
    claimed = 0
    added: Counter[str] = Counter()
    for name in sql_files("transform"):
        result = conn.execute(text(read_sql(name)), params)
        if "claim" in name:
            claimed = result.rowcount
            if claimed == 0:
                break
        elif result.returns_rows:
            row = result.mappings().first()
            if row is not None:
                added.update({k: int(v) for k, v in row.items()})
    return claimed, added


def run_transforms(
    engine: Engine,
    *,
    schema: str,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
) -> TransformResult:
    """Transform everything pending, one transaction per ``batch_size`` events.

    Raises:
        DatabaseError: a statement failed; batches committed before stay done, the failed
            batch's events stay pending.
    """
    result = TransformResult()
    with translating(), engine.connect() as conn:
        set_search_path(conn, schema)
        conn.commit()
        while True:
            with conn.begin():
                claimed, added = transform_batch(conn, batch_size=batch_size)
            if claimed == 0:
                return result
            result.events += claimed
            result.batches += 1
            result.rows_added.update(added)
            if on_batch is not None:
                on_batch(claimed)


def requeue_all(engine: Engine, *, schema: str) -> int:
    """Empty the collection tables and ``tracks`` and queue every landed event again.

    For a mapping fix: the next transform rebuilds the tables from ``_raw_events``.
    Returns the number of events queued.
    """
    with translating(), engine.begin() as conn:
        set_search_path(conn, schema)
        conn.execute(text(read_sql("rebuild/010_truncate.sql")))
        return conn.execute(text(read_sql("rebuild/020_requeue.sql"))).rowcount
