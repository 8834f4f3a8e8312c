"""Receive: land webhook events durably with group commit, and transform them in the background.

The HTTP layer (:mod:`loader.serve`) validates each request into a
:class:`RecordBatch` and hands it to a :class:`GroupCommitLander`; the request
is answered 2xx only once the transaction holding its records has committed::

    request -.                  .- writer 1: one INSERT into _raw_events + _pending
    request -+-> waiting list --+                                                 -> answer
    request -'                  '- writer 2: the next group, while writer 1 commits   each one

A writer takes everything waiting when it becomes free, so the group grows with the load
and one commit serves many requests; nothing waits on a timer.  A group is one statement
(``sql/land/batch_to_pending.sql``) on an autocommit connection driven by the event loop:
one round trip, its own transaction.  Events are queued in ``_pending`` and the background
transform (:mod:`loader.background`) maps them into the collection tables and ``tracks``
in micro-batches, claiming with SKIP LOCKED, so a ``drip-loader load`` running beside it
shares the work and nothing is mapped twice.

When the database cannot take a group (down, restarting, or too much is waiting), every
request in it fails with :class:`StoreUnavailable` (the receiver answers 429, which Drip
retries); the writer reconnects on its own once the database answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
import psycopg2
import psycopg2.extensions
from sqlalchemy.engine import Engine

from ..counts import Counts
from ..domain.events import BadRecord, copy_timestamp, parse_for_copy
from ..errors import DatabaseError, DatabaseUnavailable, LoaderError
from ..pipeline.land import reject_row
from ..warehouse.db import AsyncConnection, prepared, refused_data, translate_driver, translating
from ..warehouse.partitions import (
    ensure_partitions,
    forget_partitions,
    missing_partition,
    unknown_months,
)
from ..warehouse.sqlfiles import read_sql

log = logging.getLogger("loader.serve")

_MAX_BACKOFF = 5.0


BATCH_TO_PENDING = "land/batch_to_pending.sql"
"""The group-commit statement: a batch into ``_raw_events`` (once per key), its new events
into ``_pending``, its rejects into ``_rejects``."""


@dataclass
class RecordBatch:
    """Validated records for the group commit: one statement, no COPY, no stage.

    The webhook receiver collects many requests into one batch and commits them together.
    COPY through a temporary stage costs several round trips, which dominate batches of a
    few dozen records; so the batch travels as ONE JSON document, each record a row
    ``[key, event, occurred_at, is_email, origin, payload]`` with the payload embedded as
    received (orjson fragments: never parsed or escaped again).
    """

    rows: list[bytes] = field(default_factory=list)
    """One JSON array per accepted record."""
    not_email: int = 0
    rejects: list[dict[str, Any]] = field(default_factory=list)
    months: set[date] = field(default_factory=set)
    """UTC months of the accepted records: their partitions must exist first."""

    def __len__(self) -> int:
        return len(self.rows) + len(self.rejects)

    def add(self, origin: str, raw: bytes, *, load_id: str) -> str | None:
        """Validate one record and add it (or its reject row); return the reject reason, if any."""
        try:
            key, event, occurred_at, is_email, payload, month = parse_for_copy(raw)
        except BadRecord as bad:
            self.reject(bad.reason, origin=origin, raw=raw, size=len(raw), load_id=load_id)
            return bad.reason
        # occurred_at is cast to timestamptz by Postgres, as COPY would read it
        row = (key, event, copy_timestamp(occurred_at), is_email, origin, orjson.Fragment(payload))
        self.rows.append(orjson.dumps(row))
        self.not_email += not is_email
        self.months.add(month)
        return None

    def reject(self, reason: str, *, origin: str, raw: bytes, size: int, load_id: str) -> None:
        """Add a reject row for ``raw`` (``size`` is its full length when ``raw`` is a head)."""
        self.rejects.append(
            reject_row(reason=reason, origin=origin, raw=raw, size=size, load_id=load_id)
        )

    def extend(self, other: RecordBatch) -> None:
        """Append ``other``'s records (group commit: many requests, one statement)."""
        self.rows.extend(other.rows)
        self.rejects.extend(other.rejects)
        self.not_email += other.not_email
        self.months |= other.months

    def refused(self, reason: str, *, load_id: str) -> RecordBatch:
        """This batch with every accepted record turned into a reject (Postgres refused it)."""
        batch = RecordBatch(rejects=list(self.rejects))
        for row in self.rows:
            origin, payload = orjson.loads(row)[4:6]
            raw = orjson.dumps(payload)
            batch.reject(reason, origin=origin, raw=raw, size=len(raw), load_id=load_id)
        return batch

    def params(self, *, load_id: str) -> dict[str, Any]:
        """The binds of ``sql/land/batch_to_pending.sql`` for this batch."""
        rejects = self.rejects
        return {
            "records": (b"[" + b",".join(self.rows) + b"]").decode(),
            "load_id": load_id,
            "reject_reasons": [r["reason"] for r in rejects],
            "reject_origins": [r["origin"] for r in rejects],
            "reject_texts": [r["raw_text"] for r in rejects],
            "reject_bytes": [r["raw_bytes"] for r in rejects],
            "reject_sizes": [r["raw_size"] for r in rejects],
            "reject_sha256": [r["raw_sha256"] for r in rejects],
        }

    def result(self, landed: int) -> Counts:
        """The counts of this batch once ``landed`` of its events turned out to be new."""
        return Counts(
            read=len(self),
            landed=landed,
            duplicates=len(self.rows) - landed,
            rejected=len(self.rejects),
            not_email=self.not_email,
        )


class StoreUnavailable(Exception):
    """The events could not be committed now; the sender should retry later (HTTP 429)."""


class Refused(Exception):
    """Postgres refused the request's records; they were stored as rejects (HTTP 400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Waiting:
    batch: RecordBatch
    future: asyncio.Future[None]


class GroupCommitLander:
    """Land the records of many concurrent requests, many requests per transaction.

    Create and use it inside a running event loop: :meth:`start`, then :meth:`submit` from
    request handlers, then :meth:`stop` once no request is in flight any more.

    Args:
        engine: the warehouse database.
        schema: warehouse schema.
        load_id: stored with every landed and rejected record of this receiver.
        writers: connections committing groups concurrently.
        max_group_events: records per transaction at most.
        max_queued_events: records waiting at most; beyond it requests fail fast (429).
        commit_timeout: seconds a statement (or connect) may take; then its group is
            answered 429 (it may still commit: the sender's retry is then a duplicate).
        ready: called in a writer thread before each connect; raises while the database
            cannot be used yet (the receiver migrates or checks the schema there).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        schema: str,
        load_id: str,
        writers: int = 2,
        max_group_events: int = 5_000,
        max_queued_events: int = 50_000,
        commit_timeout: float = 10.0,
        ready: Callable[[], None] = lambda: None,
    ) -> None:
        self._engine = engine
        self._schema = schema
        self._load_id = load_id
        self._writers = max(1, writers)
        self._max_group = max_group_events
        self._max_queued = max_queued_events
        self._timeout = commit_timeout
        self._ready = ready
        # Plain lists, not an asyncio.Queue: a writer takes the whole list in one step, so
        # queueing costs O(1) per group rather than per request.
        self._waiting: list[_Waiting] = []
        self._idle: list[asyncio.Future[None]] = []
        self._queued = 0
        self._busy = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._open: list[AsyncConnection | None] = [None] * self._writers
        # The landing statement is prepared once per connection: planning its CTE cost the
        # server as much as running it for a group of fifteen events.
        self._prepare, self._execute = prepared(engine, "drip_land", read_sql(BATCH_TO_PENDING))
        self._closed = False
        self._failures = 0
        self._down_until = 0.0
        self.stats = Counts()
        """What the lander has committed since it started."""
        self.commits = 0
        """Transactions; ``stats.read / commits`` is the mean group size."""
        self.failed_groups = 0
        self.database_up = True
        """False from a failed commit until the next successful one."""

    def start(self) -> None:
        """Start the writer tasks (call from the event loop)."""
        self._tasks = [
            asyncio.create_task(self._run(slot), name=f"drip-lander-{slot}")
            for slot in range(self._writers)
        ]

    async def submit(self, batch: RecordBatch) -> None:
        """Return once ``batch`` is committed.

        Raises:
            StoreUnavailable: it was not committed (database down or too slow, too much
                waiting, shutting down); nothing about it may be acknowledged.
            Refused: Postgres refused its records; they are stored as rejects instead.
        """
        if self._closed:
            raise StoreUnavailable("the receiver is shutting down")
        if time.monotonic() < self._down_until:
            raise StoreUnavailable("the database is unavailable")
        size = len(batch)
        if self._queued + size > self._max_queued:
            raise StoreUnavailable(f"{self._queued} events are already waiting for the database")
        # No timer per request: every statement (and connect) of a writer has a timeout, after
        # which its group fails and the rest fail fast while the database is down.
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(batch, future))
        self._queued += size
        if self._idle:
            self._idle.pop().set_result(None)
        await future

    @property
    def queued(self) -> int:
        """Records waiting for a writer."""
        return self._queued

    async def stop(self) -> None:
        """Land what is queued, then stop the writers and close their connections."""
        self._closed = True
        while self._queued or self._busy:
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for slot, conn in enumerate(self._open):
            if conn is not None:
                conn.close()
            self._open[slot] = None

    async def _run(self, slot: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._waiting:
                wakeup: asyncio.Future[None] = loop.create_future()
                self._idle.append(wakeup)
                await wakeup
                continue
            group = self._take()
            self._busy += 1
            try:
                await self._commit(slot, group)
            finally:
                self._busy -= 1

    def _take(self) -> list[_Waiting]:
        """Everything waiting, or the oldest requests up to ``max_group_events`` records."""
        waiting = self._waiting
        if self._queued <= self._max_group:
            self._waiting, self._queued = [], 0
            return waiting
        size = count = 0
        for item in waiting:
            size += len(item.batch)
            count += 1
            if size >= self._max_group:
                break
        self._waiting = waiting[count:]
        self._queued -= size
        return waiting[:count]

    async def _commit(self, slot: int, group: list[_Waiting]) -> None:
        if time.monotonic() < self._down_until:
            self._fail(group, StoreUnavailable("the database is unavailable"))
            return
        if len(group) == 1:
            batch = group[0].batch
        else:
            batch = RecordBatch()
            for item in group:
                batch.extend(item.batch)
        try:
            result = await self._land(slot, batch)
        except DatabaseUnavailable as exc:
            self._mark_down(exc)
            self._fail(group, StoreUnavailable("the database is unavailable"))
            return
        except LoaderError as exc:
            if len(group) > 1:
                # Not the connection: one request's records, most likely.  Commit the
                # requests apart so that one cannot hold the others back.
                middle = len(group) // 2
                await self._commit(slot, group[:middle])
                await self._commit(slot, group[middle:])
                return
            if refused_data(exc):
                await self._refuse(slot, group[0], exc)
                return
            log.error("could not land a webhook request, answering 429: %s", exc)
            self.failed_groups += 1
            self._fail(group, StoreUnavailable("the database refused the event"))
            return
        except Exception:
            log.exception("bug while landing a webhook request; answering 429")
            self.failed_groups += 1
            self._fail(group, StoreUnavailable("internal error"))
            return
        self._succeeded(result)
        for item in group:
            if not item.future.done():
                item.future.set_result(None)

    async def _refuse(self, slot: int, item: _Waiting, exc: LoaderError) -> None:
        """Postgres refused one request's data (SQLSTATE 22): keep it as a reject (spec §6)."""
        reason = f"refused by Postgres: {exc}"
        try:
            refused = item.batch.refused(reason, load_id=self._load_id)
            result = await self._land(slot, refused)
        except Exception as again:
            log.error("could not land a webhook request, answering 429: %s (%s)", exc, again)
            self.failed_groups += 1
            self._fail([item], StoreUnavailable("the database refused the event"))
            return
        self._succeeded(result)
        if not item.future.done():
            item.future.set_exception(Refused(reason))

    def _succeeded(self, result: Counts) -> None:
        if not self.database_up:
            log.warning("the database is back: storing webhooks again")
        self.database_up = True
        self._failures = 0
        self._down_until = 0.0
        self.stats.add(result)
        self.commits += 1

    async def _land(self, slot: int, batch: RecordBatch) -> Counts:
        """One autocommit statement for the whole group on this writer's connection, once
        the partitions of its months exist; again if a partition turns out to be gone
        (dropped since this process made sure of it)."""
        try:
            return await self._land_once(slot, batch)
        except DatabaseError as exc:
            if not missing_partition(exc.__cause__ or exc):
                raise
            forget_partitions(self._engine, schema=self._schema)
            return await self._land_once(slot, batch)

    async def _partitions(self, batch: RecordBatch) -> None:
        """Make the partitions of the batch's months, off the loop, unless known to exist."""
        if not unknown_months(self._engine, schema=self._schema, months=batch.months):
            return

        def ensure() -> None:
            with translating():
                ensure_partitions(self._engine, schema=self._schema, months=batch.months)

        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(None, ensure), self._timeout
            )
        except TimeoutError:
            raise DatabaseUnavailable(
                f"the database did not make a new month's partitions within {self._timeout:g} s"
            ) from None

    async def _land_once(self, slot: int, batch: RecordBatch) -> Counts:
        conn = self._open[slot]
        try:
            if conn is None:
                # Migrating or checking the schema is synchronous (alembic): off the loop.
                await asyncio.get_running_loop().run_in_executor(None, self._ready)
                conn = await AsyncConnection.open(
                    self._engine, schema=self._schema, timeout=self._timeout, prepare=self._prepare
                )
                self._open[slot] = conn
            await self._partitions(batch)
            row = await asyncio.wait_for(
                conn.execute(self._execute, batch.params(load_id=self._load_id)), self._timeout
            )
        except BaseException as exc:
            # Whatever happened, the connection may be broken or mid-statement: start afresh.
            self._open[slot] = None
            lost = conn is None or conn.closed
            if conn is not None:
                conn.close()
            if isinstance(exc, psycopg2.Error):
                raise translate_driver(exc, connection_lost=lost) from exc
            if isinstance(exc, TimeoutError):
                raise DatabaseUnavailable(
                    f"the database did not answer within {self._timeout:g} s"
                ) from None
            raise
        assert row is not None
        return batch.result(int(row[0]))

    def _mark_down(self, exc: DatabaseError) -> None:
        if self.database_up:
            log.warning("%s; answering 429 until it is back", exc)
        self.database_up = False
        self.failed_groups += 1
        self._failures += 1
        # Fail fast for a moment instead of queueing requests behind a dead server.
        self._down_until = time.monotonic() + min(0.25 * 2 ** (self._failures - 1), _MAX_BACKOFF)

    @staticmethod
    def _fail(group: list[_Waiting], exc: StoreUnavailable) -> None:
        for item in group:
            if not item.future.done():
                item.future.set_exception(exc)
