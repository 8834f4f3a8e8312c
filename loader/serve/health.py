"""Whether the receiver is well: ``GET /healthz`` and ``GET /metrics``, and the facts behind them.

The database answers (and the schema is ready), each background worker's state, the
transform's lag: :class:`Health` reads them from the receiver it watches, with its own
probe threads, so a health check is never queued behind landing.  The debugger page shows
the same facts, from here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import Response

from ..config import ServeOptions, Settings
from ..errors import DatabaseError, LoaderError
from ..warehouse.db import set_search_path, translating
from ..warehouse.sqlfiles import read_sql
from .lander import GroupCommitLander
from .metrics import ServeReport, exposition
from .workers import Worker, WorkerState

log = logging.getLogger("loader.serve")


class Receiving(Protocol):
    """What health reads of the receiver (:class:`loader.serve.app.Receiver`)."""

    engine: Engine
    settings: Settings
    options: ServeOptions
    lander: GroupCommitLander | None
    transformer: Worker
    emitter: Worker | None

    def prepare(self) -> None: ...

    def report(self) -> ServeReport: ...


class Health:
    """The health of ``receiver``: the handlers of ``/healthz`` and ``/metrics``."""

    def __init__(self, receiver: Receiving) -> None:
        self._receiver = receiver
        # Health and metrics queries get their own threads: never queued behind landing.
        self._probe = ThreadPoolExecutor(2, thread_name_prefix="drip-probe")
        self._lock = threading.Lock()
        self._state: str | None = None
        """The last answer of /healthz: ok, degraded or unavailable (why)."""

    def close(self) -> None:
        """Stop the probe threads (the receiver has stopped)."""
        self._probe.shutdown(wait=False)

    async def status(self) -> tuple[str, str | None]:
        """What ``/healthz`` says: ``("ok", None)``, ``("degraded", why)`` or
        ``("unavailable", why)``, why in a few words: never a host, port, user or advice
        (anyone who reaches the port reads it); the detail goes to serve's log, once per
        change of state."""
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(self._probe, self._check), 5.0)
        except TimeoutError:
            reason, detail = "database did not answer in time", "no answer within 5 s"
        except DatabaseError as exc:
            reason, detail = exc.reason, str(exc)
        except LoaderError as exc:  # the schema cannot be used (behind head, --no-migrate)
            reason, detail = "schema not ready", str(exc)
        else:
            reasons = "; ".join(self.degraded())
            self._changed("degraded" if reasons else "ok", reasons)
            return ("degraded", reasons) if reasons else ("ok", None)
        self._changed(f"unavailable ({reason})", detail)
        return "unavailable", reason

    async def healthz(self, request: Request) -> Response:
        """``GET /healthz``: 200 when the database answers (and the schema is ready), else 503."""
        status, reason = await self.status()
        if status == "ok":
            return Response(b'{"status":"ok"}', media_type="application/json")
        if status == "degraded":
            # Still 200: the events are stored, so Drip must keep sending; a monitor that
            # reads the body sees that they are not going further.
            return Response(
                orjson.dumps({"status": "degraded", "reason": reason}),
                media_type="application/json",
            )
        return Response(
            orjson.dumps({"status": "unavailable", "reason": reason}),
            status_code=503,
            media_type="application/json",
        )

    def _changed(self, state: str, detail: str) -> None:
        """Log ``/healthz``'s answer, with its detail, when it differs from the last one."""
        with self._lock:
            last, self._state = self._state, state
        if state == last:
            return
        if state != "ok":
            log.warning("/healthz: %s: %s", state, detail)
        elif last is not None:
            log.warning("/healthz: ok again")

    def worker_states(self) -> list[WorkerState]:
        """The state of each background worker (transform, then emit when on)."""
        receiver = self._receiver
        workers = [receiver.transformer]
        if receiver.emitter is not None:
            workers.append(receiver.emitter)
        return [worker.state() for worker in workers]

    def degraded(self) -> list[str]:
        """Why the receiver is degraded: each worker failing for over ``degraded_after``
        seconds, or stopped while the receiver runs; empty when it is not."""
        if self._receiver.lander is None:  # not started (or already stopped): no worker is expected
            return []
        now = time.time()
        reasons = []
        for state in self.worker_states():
            failing = state.failing_for(now)
            # The error's type only: its message may name the host (the log has it whole).
            last = (state.last_error or "none").partition(":")[0]
            if not state.alive:
                reasons.append(f"{state.name} is not running (last error: {last})")
            elif failing > self._receiver.options.degraded_after:
                reasons.append(
                    f"{state.name} has failed for {failing:.0f} s ({state.errors} error(s) so "
                    f"far), last: {last}"
                )
        return reasons

    def _check(self) -> None:
        self._receiver.prepare()
        with translating(), self._receiver.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    async def metrics(self, request: Request) -> Response:
        """``GET /metrics``: Prometheus text exposition (format 0.0.4)."""
        lag = await self.lag()
        report = self._receiver.report()
        lander = self._receiver.lander
        return Response(
            exposition(
                report,
                responses=report.responses,
                commits=lander.commits if lander else 0,
                queued=lander.queued if lander else 0,
                workers=self.worker_states(),
                lag=lag,
            ).encode(),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    async def lag(self) -> tuple[int, float] | None:
        """Events waiting for the transform (from any process) and the age in seconds of
        the oldest; None when the database does not answer within 5 s."""
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._probe, self._lag), 5.0)
        except (TimeoutError, LoaderError):
            return None

    def _lag(self) -> tuple[int, float]:
        with translating(), self._receiver.engine.connect() as conn:
            set_search_path(conn, self._receiver.settings.schema)
            row = conn.execute(text(read_sql("serve/transform_lag.sql"))).one()
            conn.rollback()
        return int(row.pending), float(row.lag_seconds)
