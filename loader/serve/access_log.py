"""The access log of ``serve --access-log``: one line per request, the webhook token redacted.

The token is the secret in the URL (Drip cannot sign requests), so uvicorn's own access log
stays off and this middleware prints the path with the token replaced by ``***``.
"""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_REDACT = re.compile(r"^/webhooks/drip/[^/]*")


def redacted(path: str) -> str:
    """``path`` with the webhook token replaced by ``***``."""
    return _REDACT.sub("/webhooks/drip/***", path)


class AccessLog:
    """One log line per request, with the webhook token redacted from the path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger(__name__)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client") or ("-", 0)
            path = redacted(scope.get("path", ""))
            self.log.info(
                '%s "%s %s" %d %.1fms',
                client[0],
                scope.get("method", "-"),
                path,
                status,
                (time.perf_counter() - started) * 1000,
            )
