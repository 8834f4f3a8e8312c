"""Background work of ``serve``: the transform and the forwarding to Segment, each a worker.

A :class:`Worker` is a thread that runs one :class:`Job` step after step: at once while the
job says more is waiting, else every ``interval`` seconds.  It never dies while the
receiver runs: whatever a step raises (the database gone, Segment down, a bug) is logged,
counted and retried after a capped backoff, and the job drops what the failure may have
broken (its connection).  A worker that stopped working silently is the failure that
matters most in a loader, so each worker's :class:`WorkerState` (last success, errors,
failing since when and why) is what ``/metrics`` exposes and ``/healthz`` judges.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Protocol

from sqlalchemy.engine import Connection, Engine

from ..config import DEFAULT_OUTBOX_RETENTION
from ..counts import Counts
from ..errors import EmitError, ForwardingOff, LoaderError
from ..pipeline.transform import merge_all_subscribers, transform_batch
from ..warehouse.db import batch_session, translating

log = logging.getLogger("loader.serve")

FIRST_BACKOFF = 0.25
"""Seconds before the first retry of a failed step; doubled for each next failure."""
MAX_BACKOFF = 5.0
"""Upper bound of the wait between two failed steps."""


class Job(Protocol):
    """One kind of background work, run by a :class:`Worker` (one thread: never concurrently)."""

    name: str
    """Label in logs, ``/metrics`` and ``/healthz`` (``transform``, ``emit``)."""

    def step(self) -> bool:
        """Do one unit of work; return True when more is waiting right away."""

    def reset(self) -> None:
        """Drop what a failed step may have left broken (a connection); also called at the end."""


@dataclass(frozen=True)
class WorkerState:
    """What a worker has done and whether it is failing, at one moment."""

    name: str
    alive: bool
    """The thread is running (False before start and after stop)."""
    runs: int
    """Steps that succeeded, empty ones included (the worker is alive)."""
    errors: int
    """Steps that failed since the start."""
    last_success: float | None
    """Unix time of the last step that succeeded."""
    failing_since: float | None
    """Unix time of the first failure of the current run of failures; None when the last
    step succeeded."""
    last_error: str | None
    """The last failure, as ``Type: message``."""

    def failing_for(self, now: float) -> float:
        """Seconds the worker has been failing at ``now`` (0 when it is not)."""
        return 0.0 if self.failing_since is None else max(0.0, now - self.failing_since)


class Worker:
    """Run ``job`` in a thread until :meth:`stop`, surviving any exception.

    Args:
        job: the work.
        interval: seconds between steps when the job says nothing more is waiting.
        max_backoff: longest wait between two failed steps.
    """

    def __init__(self, job: Job, *, interval: float, max_backoff: float = MAX_BACKOFF) -> None:
        self.job = job
        self._interval = interval
        self._max_backoff = max_backoff
        self._stop = threading.Event()
        self._deadline = 0.0
        self._lock = threading.Lock()
        self._runs = 0
        self._errors = 0
        self._last_success: float | None = None
        self._failing_since: float | None = None
        self._last_error: str | None = None
        self._thread = threading.Thread(target=self._loop, name=f"drip-{job.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, *, drain_seconds: float = 0.0) -> None:
        """Finish the running step, then step on while more is waiting (up to
        ``drain_seconds``), so what arrived before the stop is done too; then stop."""
        self._deadline = time.monotonic() + drain_seconds
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def state(self) -> WorkerState:
        with self._lock:
            return WorkerState(
                name=self.job.name,
                alive=self._thread.is_alive(),
                runs=self._runs,
                errors=self._errors,
                last_success=self._last_success,
                failing_since=self._failing_since,
                last_error=self._last_error,
            )

    def _loop(self) -> None:
        failures = 0
        try:
            while True:
                stopping = self._stop.is_set()
                try:
                    more = self.job.step()
                except Exception as exc:
                    failures += 1
                    self._failed(exc, first=failures == 1)
                    with contextlib.suppress(Exception):
                        self.job.reset()
                    if stopping:
                        break
                    self._stop.wait(min(FIRST_BACKOFF * 2 ** (failures - 1), self._max_backoff))
                    continue
                if failures:
                    log.warning("%s is working again after %d failure(s)", self.job.name, failures)
                failures = 0
                with self._lock:
                    self._runs += 1
                    self._last_success = time.time()
                    self._failing_since = None
                if stopping and (not more or time.monotonic() > self._deadline):
                    break
                if not more:
                    self._stop.wait(self._interval)
        finally:
            with contextlib.suppress(Exception):
                self.job.reset()

    def _failed(self, exc: Exception, *, first: bool) -> None:
        with self._lock:
            self._errors += 1
            if self._failing_since is None:
                self._failing_since = time.time()
            self._last_error = f"{type(exc).__name__}: {exc}"
        if not first:
            return
        if isinstance(exc, LoaderError):
            log.warning("%s failed, retrying: %s", self.job.name, exc)
        else:
            log.exception("bug in the background %s, retrying", self.job.name)


class _Counting:
    """What a job has done so far, read from other threads (``/metrics``, the report)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = Counts()

    def _count(self, done: Counts) -> None:
        with self._lock:
            self._counts.add(done)

    def snapshot(self) -> Counts:
        """The counts so far (a copy)."""
        with self._lock:
            return replace(self._counts, rows_added=Counter(self._counts.rows_added))


class TransformJob(_Counting):
    """Map pending events into the tables, a batch per step; merge subscribers when caught up.

    Claiming uses SKIP LOCKED, so a ``drip-loader load`` running beside it shares the work.
    """

    name = "transform"

    def __init__(
        self,
        engine: Engine,
        *,
        schema: str,
        batch_size: int,
        ready: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__()
        self._engine = engine
        self._schema = schema
        self._batch_size = batch_size
        self._ready = ready
        self._conn: Connection | None = None

    def step(self) -> bool:
        with translating():
            if self._conn is None:
                self._ready()
                self._conn = self._engine.connect()
                batch_session(self._conn, self._schema)
                self._conn.commit()
            conn = self._conn
            with conn.begin():
                claimed, added = transform_batch(conn, batch_size=self._batch_size)
            if claimed < self._batch_size:  # caught up: bring subscribers up to date
                added["subscribers"] += merge_all_subscribers(conn)
        if claimed or added:
            self._count(Counts(transformed=claimed, rows_added=added))
        return claimed >= self._batch_size

    def reset(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


class EmitJob(_Counting):
    """Forward what the transform queued in the outbox to Segment, everything per step.

    The outbox makes it safe beside a scheduled ``emit`` (SKIP LOCKED) and across restarts
    (a re-send carries the same messageId).  When Segment is down the step fails, the
    events stay pending and the worker retries; the receiver never waits for it.
    """

    name = "emit"

    def __init__(
        self,
        engine: Engine,
        *,
        schema: str,
        write_key: str,
        host: str,
        outbox_retention: timedelta = DEFAULT_OUTBOX_RETENTION,
        ready: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__()
        self._engine = engine
        self._schema = schema
        self._write_key = write_key
        self._host = host
        self._outbox_retention = outbox_retention
        self._ready = ready
        self._off_logged = False

    def step(self) -> bool:
        from ..pipeline.emit import emit_events  # httpx is loaded only when forwarding is on

        self._ready()
        try:
            report = emit_events(
                self._engine,
                schema=self._schema,
                write_key=self._write_key,
                host=self._host,
                outbox_retention=self._outbox_retention,
            )
        except EmitError as exc:
            self._count(exc.report)
            raise
        except ForwardingOff as off:
            # turned off on purpose (emit --off): idle, not failing; said once
            if not self._off_logged:
                log.warning("not forwarding: %s", off)
                self._off_logged = True
            return False
        self._off_logged = False
        self._count(report)
        return False

    def reset(self) -> None:
        pass  # emit_events opens and closes its own connection and HTTP client
