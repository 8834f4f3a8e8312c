"""Transform: map landed events into the collection tables and ``tracks``, in SQL.

The mapping is ``sql/transform/map_and_insert.sql``: the tail of one statement whose head
says which events to map.  File loads put it behind the landing of each chunk
(``sql/land/insert_raw.sql``); here it follows ``claim_pending.sql``, which takes
events queued in ``_pending`` (by the webhook receiver, or left by a crash) with SKIP
LOCKED, so concurrent transforms share the work and an event whose landing commits late
is simply claimed by a later batch: nothing is skipped, nothing is mapped twice.

The ``subscribers`` dimension is merged once per run (:func:`merge_subscribers`) from the
snapshots the mapping queues in ``_subscriber_changes``: a subscriber shows up in most
chunks of a file, and merging per chunk cost a third of a load's database time.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from ..domain.registry import DEFAULT_ON
from ..warehouse.db import batch_session, translating
from ..warehouse.mapping import (
    enabled_collections,
    map_params,
    mapping_statement,
)
from ..warehouse.sqlfiles import read_sql

ADDED_COUNTS = ("tracks", *DEFAULT_ON, "outbox", "subscribers")
"""Rows added per table, in report order (opt-in collections that are on follow the email
ones when they add rows): the mapping statement returns all but ``subscribers``, which
:func:`merge_subscribers` counts."""
MERGE_BATCH = 200_000
"""Queued subscriber snapshots merged per transaction (one sort of this many fits in work_mem)."""


@dataclass
class TransformResult:
    """What a transform run did."""

    events: int = 0
    """Pending events claimed (email and other Drip events alike)."""
    batches: int = 0
    rows_added: Counter[str] = field(default_factory=Counter)
    """Rows inserted per table."""


def transform_batch(conn: Connection, *, batch_size: int) -> tuple[int, Counter[str]]:
    """Map up to ``batch_size`` pending events on ``conn`` (the caller owns the transaction).

    Returns:
        The number of events claimed and the rows added per table.
    """
    names = enabled_collections(conn)
    statement = mapping_statement("transform/claim_pending.sql", names)
    row = conn.execute(statement, {**map_params(names), "batch_size": batch_size}).mappings().one()
    counts = Counter({k: int(v) for k, v in row.items()})
    claimed = counts.pop("events")
    return claimed, counts


def merge_subscribers(
    conn: Connection,
    *,
    limit: int = MERGE_BATCH,
    part: int = 0,
    parts: int = 1,
    refresh: bool = False,
) -> tuple[int, int]:
    """Merge up to ``limit`` queued snapshots into ``subscribers`` (the caller owns the transaction).

    With ``parts`` > 1, only the snapshots of subscribers in part ``part`` (of ``parts``,
    split by id): merges of different parts can run at once without meeting.  With
    ``refresh`` (a rebuild), a snapshot as new as the row's is written again (a mapping fix).

    Returns:
        The snapshots taken from the queue and the subscribers inserted (not updated).
    """
    row = conn.execute(
        text(read_sql("transform/merge_subscribers.sql")),
        {"limit": limit, "part": part, "parts": parts, "refresh": refresh},
    ).one()
    return int(row.taken), int(row.inserted)


def merge_all_subscribers(
    conn: Connection,
    *,
    on_batch: Callable[[int], None] | None = None,
    part: int = 0,
    parts: int = 1,
    refresh: bool = False,
) -> int:
    """Merge every queued snapshot (of part ``part``, see :func:`merge_subscribers`), a
    transaction per :data:`MERGE_BATCH`; return the subscribers inserted.

    ``conn`` has no transaction open.  Concurrent runs share the queue (SKIP LOCKED).
    ``on_batch`` is called with 0 before the first batch, then with each batch's size.
    ``refresh``: see :func:`merge_subscribers`.
    """
    inserted = 0
    if on_batch is not None:
        on_batch(0)
    while True:
        with conn.begin():
            taken, added = merge_subscribers(conn, part=part, parts=parts, refresh=refresh)
        inserted += added
        if on_batch is not None:
            on_batch(taken)
        if taken < MERGE_BATCH:
            return inserted


def merge_in_parallel(
    engine: Engine,
    conn: Connection,
    *,
    schema: str,
    parts: int,
    on_batch: Callable[[int], None] | None = None,
    refresh: bool = False,
) -> int:
    """:func:`merge_all_subscribers` split in ``parts``, each on its own connection (``conn``
    takes part 0); return the subscribers inserted.

    The merge that ends a file load has the database to itself: split over the load's
    connections it runs on as many cores instead of one (0.61 -> 0.40 s for the snapshots
    of 200k events on two cores).
    """
    if parts <= 1:
        return merge_all_subscribers(conn, on_batch=on_batch, refresh=refresh)
    lock = threading.Lock()

    def counted(taken: int) -> None:
        if on_batch is not None:
            with lock:
                on_batch(taken)

    def merge_part(part: int) -> int:
        with engine.connect() as own:  # errors are translated by the caller's translating()
            batch_session(own, schema)
            own.commit()
            return merge_all_subscribers(
                own, on_batch=counted, part=part, parts=parts, refresh=refresh
            )

    with ThreadPoolExecutor(parts - 1, thread_name_prefix="drip-merge") as pool:
        others = [pool.submit(merge_part, part) for part in range(1, parts)]
        inserted = merge_all_subscribers(
            conn, on_batch=counted, part=0, parts=parts, refresh=refresh
        )
        # every part finishes (or fails) before this returns; the first failure is raised
        return inserted + sum(other.result() for other in others)


def run_transforms(
    engine: Engine,
    *,
    schema: str,
    batch_size: int,
    merge_parts: int = 1,
    on_batch: Callable[[int], None] | None = None,
    on_merge: Callable[[int], None] | None = None,
) -> TransformResult:
    """Transform everything pending, one transaction per ``batch_size`` events, then merge
    the subscriber snapshots queued (by this run, by the loads before it, by a crash), on
    ``merge_parts`` connections at once (:func:`merge_in_parallel`).

    ``on_batch`` is called with the events of each transform batch, ``on_merge`` as
    :func:`merge_all_subscribers` calls its ``on_batch`` (from several threads when
    ``merge_parts`` > 1, one at a time).

    Raises:
        DatabaseError: a statement failed; batches committed before stay done, the failed
            batch's events stay pending.
    """
    result = TransformResult()
    with translating(), engine.connect() as conn:
        batch_session(conn, schema)
        conn.commit()
        while True:
            with conn.begin():
                claimed, added = transform_batch(conn, batch_size=batch_size)
            if claimed == 0:
                result.rows_added["subscribers"] += merge_in_parallel(
                    engine, conn, schema=schema, parts=merge_parts, on_batch=on_merge
                )
                return result
            result.events += claimed
            result.batches += 1
            result.rows_added.update(added)
            if on_batch is not None:
                on_batch(claimed)
