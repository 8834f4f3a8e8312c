"""Serve: the HTTP receiver for Drip webhooks (``drip-loader serve``).

Routes::

    POST /webhooks/drip/{token}   one Drip event object, or a JSON array of them
    GET  /healthz                 200 when the database answers, else 503
    GET  /metrics                 Prometheus text: requests, events, transform lag
    GET  /debugger                the live debugger page (only with an admin token:
                                  :mod:`loader.serve.debugger`)

A webhook request is answered only after its records are committed (:mod:`loader.serve.lander`):

* 200 ``{"received": n}`` — every record is in ``_raw_events`` (a retried duplicate too: it
  is stored once) and queued for the transform;
* 400 ``{"error": ...}`` — not JSON, not an event object, ... : kept in ``_rejects`` with
  the request's origin (``webhook:<client address>:<arrival time>``), never the token;
* 413 — the body is over ``max_body_bytes``; its head is kept in ``_rejects`` too;
* 404 — wrong token: nothing is read or stored;
* 429 with ``Retry-After`` — could not be stored right now (database down, too many
  waiting): the only status Drip retries, so nothing is lost.

The token lives in the URL (Drip cannot sign or add headers), so the URL is never logged:
uvicorn's access log is off and ours (``access_log=True``) prints the path redacted.  Each
refused request (400, 413, 408) is one line on stderr, rate-limited (:mod:`loader.serve.refusals`).
Stack: Starlette on uvicorn (httptools + uvloop when installed); the webhook route is a
plain ASGI endpoint in Starlette's router, without its Request/Response layer.  This module
is the app and its routes; a body is read and becomes records in :mod:`loader.serve.webhook`,
records are committed by :mod:`loader.serve.lander`, mapped and forwarded by
:mod:`loader.serve.workers`, and ``/healthz`` and ``/metrics`` answer from
:mod:`loader.serve.health`.
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
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import ServeOptions, Settings
from ..errors import LoaderError
from ..warehouse.migrate import ensure_schema
from ..warehouse.runs import Run, start_run
from .access_log import AccessLog
from .debugger import Debugger, Recorder
from .health import Health
from .lander import GroupCommitLander, RecordBatch, Refused, StoreUnavailable
from .metrics import ServeReport
from .refusals import RefusalLog
from .webhook import BodyTimeout, parse_body, read_body
from .workers import EmitJob, TransformJob, Worker

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/drip/{token}"
COUNTS_INTERVAL = 5.0
"""Seconds between two writes of a running serve's counts into its ``_runs`` row."""


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
            from ..pipeline.emit import check_forwarding  # httpx only when forwarding is on

            self.emit = EmitJob(
                engine,
                schema=settings.schema,
                write_key=check_forwarding(
                    write_key=settings.segment_write_key, host=settings.segment_host
                ),
                host=settings.segment_host,
                outbox_retention=settings.outbox_retention,
                ready=self.prepare,
            )
            self.emitter = Worker(self.emit, interval=options.emit_interval)
        self.health = Health(self)
        self.refusals = RefusalLog()
        self.recorder: Recorder | None = Recorder() if options.admin_token else None
        """The debugger page's live stream; None when the page is off (no admin token)."""

    # -- database preparation ---------------------------------------------------------

    def prepare(self) -> None:
        """Migrate (or check) the schema and record this run, once; safe from any thread.

        Raises:
            DatabaseUnavailable: not reachable yet (the receiver answers 429 meanwhile).
            LoaderError: the schema cannot be used (e.g. behind head with ``--no-migrate``).
        """
        if self._prepared:
            # Called again when a connection is opened anew, e.g. after a database restart:
            # the run's own session went with it, and with it the lock that says it is alive.
            assert self._run is not None
            self._run.hold()
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
        try:
            self._run.finish(_run_counts(report), error=error)
        except LoaderError as exc:
            log.warning("could not record the end of this run in _runs: %s", exc)

    async def record_counts(self) -> None:
        """Write the counts so far into this run's ``_runs`` row every
        :data:`COUNTS_INTERVAL` seconds (when they changed), so that ``status`` shows a
        running serve's live counts; until cancelled.

        The counts are read here, on the event loop (the lander's live in it); only the
        write goes to a thread.
        """
        loop = asyncio.get_running_loop()
        written: dict[str, Any] | None = None
        failing = False
        while True:
            await asyncio.sleep(COUNTS_INTERVAL)
            counts = _run_counts(self.report())
            changed = {k: v for k, v in counts.items() if k != "seconds"}  # seconds always move
            if self._run is None or changed == written:
                continue
            try:
                await loop.run_in_executor(None, self._run.update, counts)
            except LoaderError as exc:
                if not failing:
                    log.warning("could not record this run's counts in _runs, retrying: %s", exc)
                failing = True
                continue
            written, failing = changed, False

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
        counting = asyncio.create_task(self.record_counts(), name="drip-run-counts")
        try:
            yield
        finally:
            # uvicorn has stopped accepting and answered every in-flight request by now.
            self.refusals.close()
            await lander.stop()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(
                None,
                lambda: self.transformer.stop(drain_seconds=self.options.shutdown_timeout),
            )
            if self.emitter is not None:
                await loop.run_in_executor(None, self.emitter.stop)
            counting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await counting
            self.health.close()

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
        every webhook is a large share of serve's CPU per event (bench_serve shows it).
        """
        token = scope["path_params"]["token"].encode("utf-8", "replace")
        recorder = self.recorder
        if not hmac.compare_digest(token, self._token):
            # The same answer as any unknown path: a wrong token learns nothing.
            await self._send(send, 404, b"Not Found", content_type=b"text/plain; charset=utf-8")
            if recorder is not None:
                client, origin = _origin(scope)
                recorder.record(404, client=client, origin=origin, size=0, body=None)
            return
        limit = self.options.max_body_bytes
        try:
            read = await read_body(receive, limit, self.options.body_timeout)
        except BodyTimeout as timeout:
            await self._too_slow(scope, send, timeout.received)
            return
        if read is None:
            return  # the client went away: nothing stored, nobody to answer
        body, size = read
        if size > limit:
            size = max(_content_length(scope), size)  # the rest is never read
        client, origin = _origin(scope)

        parsed = parse_body(body, size=size, limit=limit, origin=origin, load_id=self.load_id)
        batch, reasons, total = parsed.batch, parsed.reasons, parsed.total

        status = 200
        if total == 0:
            await self._send(send, 200, b'{"received":0}')
        else:
            status = await self._land(send, batch, scope, body, size, total, reasons)
        if recorder is not None:
            recorder.record(
                status, client=client, origin=origin, size=size, body=body, reasons=reasons
            )

    async def _too_slow(self, scope: Scope, send: Send, received: int) -> None:
        """Answer 408: the body did not arrive within ``body_timeout`` (``received`` bytes did)."""
        reason = (
            f"body not received within {self.options.body_timeout:g} s "
            f"({received:,} of {_content_length(scope):,} bytes)"
        )
        self.refusals.refused(scope, status=408, reason=reason, size=received, body=None)
        await self._send(
            send, 408, orjson.dumps({"error": "body not received in time; send it again"})
        )
        if self.recorder is not None:
            client, origin = _origin(scope)
            self.recorder.record(
                408, client=client, origin=origin, size=received, body=None, reasons=(reason,)
            )

    async def _land(
        self,
        send: Send,
        batch: RecordBatch,
        scope: Scope,
        body: bytes,
        size: int,
        total: int,
        reasons: list[str],
    ) -> int:
        """Submit ``batch``, answer, and return the status answered."""
        assert self.lander is not None
        try:
            await self.lander.submit(batch)
        except StoreUnavailable as exc:
            reasons.insert(0, f"not stored: {exc}; retry later")
            await self._send(
                send,
                429,
                orjson.dumps({"error": reasons[0]}),
                headers=[(b"retry-after", str(self.options.retry_after).encode())],
            )
            return 429
        except Refused as exc:
            reasons.insert(0, exc.reason)
        if size > self.options.max_body_bytes:
            status, error = 413, reasons[0]
        elif reasons:
            prefix = "" if total == 1 else f"{len(reasons)} of {total} events rejected, first: "
            status, error = 400, prefix + reasons[0]
        else:
            await self._send(send, 200, b'{"received":%d}' % total)
            return 200
        self.refusals.refused(scope, status=status, reason=error, size=size, body=body)
        await self._send(send, status, orjson.dumps({"error": error}))
        return status

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


def _run_counts(report: ServeReport) -> dict[str, Any]:
    return {k: v for k, v in report.as_dict().items() if k != "load_id"}


def create_app(receiver: Receiver) -> ASGIApp:
    """The ASGI application of ``receiver`` (its lifespan starts and stops the machinery)."""
    routes = [
        Route(WEBHOOK_PATH, _Endpoint(receiver.webhook), methods=["POST"]),
        Route("/healthz", receiver.health.healthz, methods=["GET"]),
        Route("/metrics", receiver.health.metrics, methods=["GET"]),
    ]
    if receiver.recorder is not None:
        routes.extend(Debugger(receiver, receiver.recorder).routes())
    app: ASGIApp = Starlette(routes=routes, lifespan=receiver.lifespan)
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


def _origin(scope: Scope) -> tuple[str, str]:
    """The request's client address, and the origin its records are stored with."""
    client = scope.get("client")
    address = client[0] if client else "unknown"
    return address, f"webhook:{address}:{datetime.now(UTC).isoformat()}"


def _content_length(scope: Scope) -> int:
    """The request's declared Content-Length, 0 when absent or not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0
