"""Serve: the HTTP receiver for Drip webhooks (``drip-loader serve``).

Routes::

    POST /webhooks/drip/{token}   one Drip event object, or a JSON array of them
    GET  /healthz                 200 when the database answers, else 503
    GET  /metrics                 Prometheus text: requests, events, transform lag

A webhook request is answered only after its records are committed (:mod:`loader.receive`):

* 200 ``{"received": n}`` — every record is in ``_raw_events`` (a retried duplicate too: it
  is stored once) and queued for the transform;
* 400 ``{"error": ...}`` — not JSON, not an event object, ... : kept in ``_rejects`` with
  the request's origin (``webhook:<client address>:<arrival time>``), never the token;
* 413 — the body is over ``max_body_bytes``; its head is kept in ``_rejects`` too;
* 404 — wrong token: nothing is read or stored;
* 429 with ``Retry-After`` — could not be stored right now (database down, too many
  waiting): the only status Drip retries, so nothing is lost.

The token lives in the URL (Drip cannot sign or add headers), so the URL is never logged:
uvicorn's access log is off and ours (``access_log=True``) prints the path redacted.
Stack: Starlette on uvicorn (httptools + uvloop when installed); the webhook route is a
plain ASGI endpoint in Starlette's router, without its Request/Response layer.  This module
is the app and its routes; a body becomes records in :mod:`loader.webhook`, records are
committed by :mod:`loader.receive`, mapped and forwarded by :mod:`loader.background`, and
``/metrics`` is written by :mod:`loader.metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import ServeOptions, Settings
from ..counts import Counts
from ..errors import ConfigError, LoaderError
from ..warehouse.db import set_search_path, translating
from ..warehouse.migrate import ensure_schema
from ..warehouse.runs import Run, start_run
from ..warehouse.sqlfiles import read_sql
from .access_log import AccessLog
from .lander import GroupCommitLander, Refused, StoreUnavailable
from .metrics import exposition
from .webhook import parse_body
from .workers import EmitJob, TransformJob, Worker, WorkerState

log = logging.getLogger("loader.serve")

WEBHOOK_PATH = "/webhooks/drip/{token}"


@dataclass(kw_only=True)
class ServeReport(Counts):
    """What one ``serve`` process did (landing, transform, forwarding), returned when it stops."""

    load_id: str
    responses: dict[str, int] = field(default_factory=dict)
    """Webhook requests answered, by HTTP status."""

    def lines(self) -> list[str]:
        requests = ", ".join(f"{n:,} x {status}" for status, n in self.responses.items())
        return [
            f"Stopped after {self.seconds:,.0f} s. Requests: {requests or 'none'}. "
            f"Events landed {self.landed:,}, duplicates {self.duplicates:,}, "
            f"rejected {self.rejected:,}; transformed {self.transformed:,}."
        ]


class Receiver:
    """The webhook receiver: the ASGI app's handlers and the machinery behind them.

    Args:
        engine: the warehouse database.
        settings: schema and database options.
        options: listening and landing options.
        load_id: id stored with everything this receiver lands (one ``_runs`` row).
    """

    def __init__(
        self, engine: Engine, *, settings: Settings, options: ServeOptions, load_id: str
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.options = options
        self.load_id = load_id
        self._token = options.token.encode()
        self._schema = settings.schema
        self._started = time.monotonic()
        self._prepared = False
        self._run: Run | None = None
        self._prepare_lock = threading.Lock()
        self.requests: Counter[int] = Counter()
        self.lander: GroupCommitLander | None = None
        self.transform = TransformJob(
            engine,
            schema=settings.schema,
            batch_size=options.poll_batch_size,
            ready=self.prepare,
        )
        self.transformer = Worker(self.transform, interval=options.transform_interval)
        self.emit: EmitJob | None = None
        self.emitter: Worker | None = None
        if options.emit:
            if not settings.segment_write_key:
                raise ConfigError(
                    "serve --emit needs a Segment write key: set SEGMENT_WRITE_KEY "
                    "or pass --segment-write-key"
                )
            self.emit = EmitJob(
                engine,
                schema=settings.schema,
                write_key=settings.segment_write_key,
                host=settings.segment_host,
                outbox_retention=settings.outbox_retention,
                ready=self.prepare,
            )
            self.emitter = Worker(self.emit, interval=options.emit_interval)
        # Health and metrics queries get their own threads: never queued behind landing.
        self._probe = ThreadPoolExecutor(2, thread_name_prefix="drip-probe")

    # -- database preparation ---------------------------------------------------------

    def prepare(self) -> None:
        """Migrate (or check) the schema and record this run, once; safe from any thread.

        Raises:
            DatabaseUnavailable: not reachable yet (the receiver answers 429 meanwhile).
            LoaderError: the schema cannot be used (e.g. behind head with ``--no-migrate``).
        """
        if self._prepared:
            return
        with self._prepare_lock:
            if self._prepared:
                return
            ensure_schema(
                self.engine, schema=self._schema, migrate_first=self.options.migrate_first
            )
            self._run = start_run(
                self.engine,
                schema=self._schema,
                load_id=self.load_id,
                command="serve",
                sources=f"webhook http://{self.options.host}:{self.options.port}",
            )
            self._prepared = True

    def finish(self, report: ServeReport, *, error: BaseException | None = None) -> None:
        """Record how the run ended, with its counts, in ``_runs`` (best effort: the events
        themselves are safe)."""
        if self._run is None:
            return
        counts = {k: v for k, v in report.as_dict().items() if k != "load_id"}
        try:
            self._run.finish(counts, error=error)
        except LoaderError as exc:
            log.warning("could not record the end of this run in _runs: %s", exc)

    # -- lifecycle ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Start the lander and the transformer with the server; drain them when it stops."""
        lander = GroupCommitLander(
            self.engine,
            schema=self._schema,
            load_id=self.load_id,
            writers=self.options.group_writers,
            max_group_events=self.options.max_group_events,
            max_queued_events=self.options.max_queued_events,
            commit_timeout=self.options.commit_timeout,
            ready=self.prepare,
        )
        lander.start()
        self.lander = lander
        self.transformer.start()
        if self.emitter is not None:
            self.emitter.start()
        try:
            yield
        finally:
            # uvicorn has stopped accepting and answered every in-flight request by now.
            await lander.stop()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(
                None,
                lambda: self.transformer.stop(drain_seconds=self.options.shutdown_timeout),
            )
            if self.emitter is not None:
                await loop.run_in_executor(None, self.emitter.stop)
            self._probe.shutdown(wait=False)

    def report(self) -> ServeReport:
        """Counts so far."""
        report = ServeReport(
            load_id=self.load_id,
            responses={str(status): n for status, n in sorted(self.requests.items())},
            seconds=round(time.monotonic() - self._started, 3),
        )
        if self.lander is not None:
            report.add(self.lander.stats)
        report.add(self.transform.snapshot())
        if self.emit is not None:
            report.add(self.emit.snapshot())
        report.rows_added = Counter(dict(sorted(report.rows_added.items())))
        return report

    # -- handlers ----------------------------------------------------------------------

    async def webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /webhooks/drip/{token}``: store the body's events, then answer.

        A plain ASGI endpoint (Starlette routes it as one: :class:`_Endpoint`): this is the
        hot path, and building and wrapping Starlette's Request and Response objects for
        every webhook cost about a sixth of serve's CPU per event (bench_serve, A/B).
        """
        token = scope["path_params"]["token"].encode("utf-8", "replace")
        if not hmac.compare_digest(token, self._token):
            # The same answer as any unknown path: a wrong token learns nothing.
            await self._send(send, 404, b"Not Found", content_type=b"text/plain; charset=utf-8")
            return
        limit = self.options.max_body_bytes
        body = bytearray()
        size = 0
        # A client trickling its body would hold a connection forever (Drip never does).
        # A bare timer that cancels this task: asyncio.timeout() measured 15% of throughput.
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = asyncio.get_running_loop().call_later(self.options.body_timeout, expire)
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away: nothing stored, nobody to answer
                part = message.get("body", b"")
                if len(body) + len(part) > limit:
                    # Keep the head for the rejects table; the rest is never read, so the
                    # size reported is the declared one.
                    body += part[: limit - len(body)]
                    size = max(_content_length(scope), limit + 1)
                    break
                body += part
                if not message.get("more_body", False):
                    break
        except asyncio.CancelledError:
            if not expired:
                raise
            task.uncancel()
            await self._send(
                send, 408, orjson.dumps({"error": "body not received in time; send it again"})
            )
            return
        finally:
            timer.cancel()
        size = max(size, len(body))
        client = scope.get("client")
        origin = f"webhook:{client[0] if client else 'unknown'}:{datetime.now(UTC).isoformat()}"

        parsed = parse_body(
            bytes(body), size=size, limit=limit, origin=origin, load_id=self.load_id
        )
        batch, reasons, total = parsed.batch, parsed.reasons, parsed.total

        if total == 0:
            await self._send(send, 200, b'{"received":0}')
            return
        assert self.lander is not None
        try:
            await self.lander.submit(batch)
        except StoreUnavailable as exc:
            await self._send(
                send,
                429,
                orjson.dumps({"error": f"not stored: {exc}; retry later"}),
                headers=[(b"retry-after", str(self.options.retry_after).encode())],
            )
            return
        except Refused as exc:
            reasons.insert(0, exc.reason)
        if size > limit:
            await self._send(send, 413, orjson.dumps({"error": reasons[0]}))
        elif reasons:
            prefix = "" if total == 1 else f"{len(reasons)} of {total} events rejected, first: "
            await self._send(send, 400, orjson.dumps({"error": prefix + reasons[0]}))
        else:
            await self._send(send, 200, b'{"received":%d}' % total)

    async def _send(
        self,
        send: Send,
        status: int,
        content: bytes,
        *,
        content_type: bytes = b"application/json",
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.requests[status] += 1
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", b"%d" % len(content)),
                    *(headers or ()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})

    async def healthz(self, request: Request) -> Response:
        """``GET /healthz``: 200 when the database answers (and the schema is ready), else 503."""
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(self._probe, self._check), 5.0)
        except TimeoutError:
            detail = "the database did not answer within 5 s"
        except LoaderError as exc:
            detail = str(exc)
        else:
            reasons = self.degraded()
            if not reasons:
                return Response(b'{"status":"ok"}', media_type="application/json")
            # Still 200: the events are stored, so Drip must keep sending; a monitor that
            # reads the body sees that they are not going further.
            return Response(
                orjson.dumps({"status": "degraded", "reason": "; ".join(reasons)}),
                media_type="application/json",
            )
        return Response(
            orjson.dumps({"status": "unavailable", "detail": detail}),
            status_code=503,
            media_type="application/json",
        )

    def worker_states(self) -> list[WorkerState]:
        """The state of each background worker (transform, then emit when on)."""
        workers = [self.transformer] if self.emitter is None else [self.transformer, self.emitter]
        return [worker.state() for worker in workers]

    def degraded(self) -> list[str]:
        """Why the receiver is degraded: each worker failing for over ``degraded_after``
        seconds, or stopped while the receiver runs; empty when it is not."""
        if self.lander is None:  # not started (or already stopped): no worker is expected
            return []
        now = time.time()
        reasons = []
        for state in self.worker_states():
            failing = state.failing_for(now)
            if not state.alive:
                reasons.append(f"{state.name} is not running (last error: {state.last_error})")
            elif failing > self.options.degraded_after:
                reasons.append(
                    f"{state.name} has failed for {failing:.0f} s ({state.errors} error(s) so "
                    f"far), last: {state.last_error}"
                )
        return reasons

    def _check(self) -> None:
        self.prepare()
        with translating(), self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    async def metrics(self, request: Request) -> Response:
        """``GET /metrics``: Prometheus text exposition (format 0.0.4)."""
        loop = asyncio.get_running_loop()
        lag: tuple[int, float] | None
        try:
            lag = await asyncio.wait_for(loop.run_in_executor(self._probe, self._lag), 5.0)
        except (TimeoutError, LoaderError):
            lag = None
        report = self.report()
        return Response(
            exposition(
                report,
                responses=report.responses,
                commits=self.lander.commits if self.lander else 0,
                queued=self.lander.queued if self.lander else 0,
                workers=self.worker_states(),
                lag=lag,
            ).encode(),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    def _lag(self) -> tuple[int, float]:
        with translating(), self.engine.connect() as conn:
            set_search_path(conn, self._schema)
            row = conn.execute(text(read_sql("serve/transform_lag.sql"))).one()
            conn.rollback()
        return int(row.pending), float(row.lag_seconds)


def create_app(receiver: Receiver) -> ASGIApp:
    """The ASGI application of ``receiver`` (its lifespan starts and stops the machinery)."""
    app: ASGIApp = Starlette(
        routes=[
            Route(WEBHOOK_PATH, _Endpoint(receiver.webhook), methods=["POST"]),
            Route("/healthz", receiver.healthz, methods=["GET"]),
            Route("/metrics", receiver.metrics, methods=["GET"]),
        ],
        lifespan=receiver.lifespan,
    )
    if receiver.options.access_log:
        app = AccessLog(app)
    return app


class _Endpoint:
    """A plain ASGI callable: Starlette routes to it without its Request/Response layer
    (a function or method endpoint would get one)."""

    def __init__(self, handler: ASGIApp) -> None:
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._handler(scope, receive, send)


def _content_length(scope: Scope) -> int:
    """The request's declared Content-Length, 0 when absent or not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0
