"""The ``/debugger`` routes: the page, its assets, and the two JSON feeds it polls.

Routes (only when an admin token is set; each asks for HTTP Basic auth, any user name,
the admin token as the password)::

    GET /debugger                       the page (index.html, app.js, style.css beside it)
    GET /debugger/api/requests?after=N  this process's webhook requests after number N
    GET /debugger/api/warehouse         health, counts of the last hour, newest rejects

The page polls both (every second, every two): no connection stays open, so a stopping
server is never held up by a viewer.  The requests feed is this process's own (each
replica shows its own); the warehouse feed is the same from every replica.  What goes
out is masked (:mod:`.masking`) unless ``debugger_show_pii``, and the webhook token is
scrubbed from every answer whatever a body holds.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import os
import socket
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, Protocol

import orjson
from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...config import ServeOptions, Settings
from ...errors import LoaderError
from ...warehouse.mapping import in_order
from ..health import Health
from ..metrics import ServeReport
from . import view
from .queries import WarehouseFacts, stored_origins, warehouse_facts
from .recorder import Entry, Recorder

REALM = 'Basic realm="drip-loader debugger", charset="UTF-8"'
ASSETS = {
    "/debugger": ("index.html", "text/html; charset=utf-8"),
    "/debugger/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/debugger/style.css": ("style.css", "text/css; charset=utf-8"),
}
WAREHOUSE_EVERY = 1.5
"""Seconds the warehouse facts are reused for (however many viewers poll them)."""

_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_PAGE_HEADERS = {
    **_HEADERS,
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
}

Handler = Callable[[Request], Awaitable[Response]]


class Watched(Protocol):
    """What the page reads of the receiver (:class:`loader.serve.app.Receiver`)."""

    engine: Engine
    settings: Settings
    options: ServeOptions
    health: Health

    def report(self) -> ServeReport: ...


class Debugger:
    """The debugger page of ``receiver``, showing what ``recorder`` keeps."""

    def __init__(self, receiver: Watched, recorder: Recorder) -> None:
        options = receiver.options
        assert options.admin_token is not None
        self._receiver = receiver
        self._recorder = recorder
        self._password = options.admin_token.encode()
        self._token = options.token.encode()
        self._show_pii = options.debugger_show_pii
        self._schema = receiver.settings.schema
        self._replica = f"{socket.gethostname()} (pid {os.getpid()})"
        folder = resources.files(__package__).joinpath("static")
        self._assets = {
            path: (folder.joinpath(name).read_bytes(), kind)
            for path, (name, kind) in ASSETS.items()
        }
        self._facts: WarehouseFacts | None = None
        self._facts_at = 0.0
        self._facts_error: str | None = None
        self._facts_lock = asyncio.Lock()

    def routes(self) -> list[Route]:
        """The page's routes, each behind the admin token."""
        asset_routes = [
            Route(path, self._guarded(self._asset), methods=["GET"]) for path in self._assets
        ]
        return [
            *asset_routes,
            Route("/debugger/api/requests", self._guarded(self._requests), methods=["GET"]),
            Route("/debugger/api/warehouse", self._guarded(self._warehouse), methods=["GET"]),
        ]

    # -- access ---------------------------------------------------------------------------

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            if not self._authorised(request.headers.get("authorization", "")):
                return Response(
                    b"The debugger needs the admin token: any user name, the token as the "
                    b"password.\n",
                    status_code=401,
                    media_type="text/plain",
                    headers={**_HEADERS, "WWW-Authenticate": REALM},
                )
            return await handler(request)

        return guarded

    def _authorised(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        _, colon, password = decoded.partition(b":")
        return bool(colon) and hmac.compare_digest(password, self._password)

    # -- handlers -------------------------------------------------------------------------

    async def _asset(self, request: Request) -> Response:
        content, kind = self._assets[request.url.path]
        headers = _PAGE_HEADERS if kind.startswith("text/html") else _HEADERS
        return Response(content, media_type=kind, headers=headers)

    async def _requests(self, request: Request) -> Response:
        try:
            after = int(request.query_params.get("after", "0"))
        except ValueError:
            after = 0
        entries = self._recorder.since(after)  # on the loop: the ring is the loop's
        facts = await self._warehouse_facts()
        enabled = facts.enabled if facts is not None else frozenset()
        rows = await asyncio.get_running_loop().run_in_executor(None, self._rows, entries, enabled)
        return self._json(
            {
                "last": entries[-1].seq if entries else after,
                "rows": rows,
                "replica": self._replica,
                "show_pii": self._show_pii,
                "capacity": self._recorder.capacity,
            }
        )

    def _rows(self, entries: list[Entry], enabled: frozenset[str]) -> list[dict[str, Any]]:
        found = view.items(entries)
        keys = sorted({item.key for item in found if item.key is not None})
        stored: dict[str, str] | None
        try:
            stored = stored_origins(self._receiver.engine, schema=self._schema, keys=keys)
        except LoaderError:
            stored = None
        return view.rows(found, stored=stored, enabled=enabled, show_pii=self._show_pii)

    async def _warehouse(self, request: Request) -> Response:
        health = self._receiver.health
        (status, detail), lag = await asyncio.gather(health.status(), health.lag())
        facts = await self._warehouse_facts()
        report = self._receiver.report()
        now = time.time()
        last_hour = None
        if facts is not None:
            last_hour = [
                {"collection": name, "events": facts.last_hour.get(name, 0)}
                for name in in_order(facts.enabled)
            ]
        return self._json(
            {
                "status": status,
                "detail": detail,
                "pending": None if lag is None else lag[0],
                "lag_seconds": None if lag is None else round(lag[1], 3),
                "workers": [
                    {
                        "name": state.name,
                        "alive": state.alive,
                        "runs": state.runs,
                        "errors": state.errors,
                        "last_success": state.last_success,
                        "failing_for": round(state.failing_for(now), 3),
                        "last_error": state.last_error,
                    }
                    for state in health.worker_states()
                ],
                "process": {
                    "seconds": report.seconds,
                    "responses": report.responses,
                    "landed": report.landed,
                    "duplicates": report.duplicates,
                    "rejected": report.rejected,
                    "kept_raw": report.not_email,
                    "transformed": report.transformed,
                },
                "last_hour": last_hour,
                "rejects": None
                if facts is None
                else view.reject_rows(facts.rejects, show_pii=self._show_pii),
                "warehouse_error": self._facts_error,
                "replica": self._replica,
            }
        )

    async def _warehouse_facts(self) -> WarehouseFacts | None:
        """The warehouse facts, asked at most once per :data:`WAREHOUSE_EVERY` seconds."""
        async with self._facts_lock:
            if time.monotonic() - self._facts_at >= WAREHOUSE_EVERY:
                try:
                    self._facts = await asyncio.get_running_loop().run_in_executor(
                        None,
                        lambda: warehouse_facts(self._receiver.engine, schema=self._schema),
                    )
                    self._facts_error = None
                except LoaderError as exc:
                    self._facts_error = str(exc)
                self._facts_at = time.monotonic()
            return self._facts

    def _json(self, value: Any) -> Response:
        content = orjson.dumps(value).replace(self._token, b"***")
        return Response(content, media_type="application/json", headers=_HEADERS)
