"""One log line per refused webhook (400, 413, 408), rate-limited so a flood cannot fill a disk.

A refused webhook is answered with its reason, but whoever runs ``serve`` reads its stderr,
not Drip's delivery log: so each refusal is a line there too, with the reason, the Drip
event when the body names one, the size, the client address and the path with the
token redacted.  At most ``per_second`` lines are written in any one-second window; the
rest are counted and summed up in one line when the window ends.

429s are not logged one by one: they come in floods while the database is away, and the
lander logs that once, and again when it is back (``/metrics`` counts them).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable

import orjson
from starlette.types import Scope

from .access_log import redacted

log = logging.getLogger("loader.serve.refused")

MAX_LINES_PER_SECOND = 10
"""Lines about refused webhooks written per second at most; the rest are summed up."""

_EVENT = re.compile(rb'"event"\s*:\s*"([^"\\]{1,200})"')
_PLAIN_EVENT = re.compile(r"[\w.:-]{1,100}")
_ELEMENT = re.compile(r"^\[(\d+)\] ")


class RefusalLog:
    """Write one line per refused webhook, at most ``per_second`` lines a second.

    Args:
        per_second: lines per one-second window at most.
        clock: monotonic seconds (tests drive it).
    """

    def __init__(
        self,
        *,
        per_second: int = MAX_LINES_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_second = per_second
        self._clock = clock
        self._window_end = 0.0
        self._lines = 0
        self._suppressed = 0
        self._summary: asyncio.TimerHandle | None = None

    def refused(
        self, scope: Scope, *, status: int, reason: str, size: int, body: bytes | None
    ) -> None:
        """Log that the request of ``scope`` was answered ``status`` for ``reason``.

        ``body`` is what was read of it (its head when over the limit; None when not read),
        ``size`` its length in bytes (the declared one when it was not read whole).
        """
        now = self._clock()
        if now >= self._window_end:
            self._summarise()
            self._window_end = now + 1.0
            self._lines = 0
        if self._lines >= self._per_second:
            self._suppressed += 1
            if self._summary is None:
                self._summary = asyncio.get_running_loop().call_later(
                    max(0.0, self._window_end - now), self._summarise
                )
            return
        self._lines += 1
        client = scope.get("client")
        log.warning(
            "refused webhook %d from %s (%s %s, %s bytes, event %s): %s",
            status,
            client[0] if client else "unknown",
            scope.get("method", "-"),
            redacted(scope.get("path", "")),
            f"{size:,}",
            drip_event(body, reason) or "unknown",
            reason,
        )

    def close(self) -> None:
        """Write the summary of the current window now (the server is stopping)."""
        self._summarise()

    def _summarise(self) -> None:
        if self._summary is not None:
            self._summary.cancel()
            self._summary = None
        if self._suppressed:
            log.warning(
                "suppressed %s more lines about refused webhooks in the last second "
                "(at most %d a second are written; /metrics counts them all)",
                f"{self._suppressed:,}",
                self._per_second,
            )
            self._suppressed = 0


def drip_event(body: bytes | None, reason: str) -> str | None:
    """The Drip event a refused body names, if any: for an array, that of the element the
    ``reason`` is about; for a head of a body over the limit, the first one in it.

    Only plain names (letters, digits, ``_ . : -``) are returned, so a crafted body cannot
    write control characters into the log; another one is shown quoted and cut.
    """
    if not body:
        return None
    event: object = None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        found = _EVENT.search(body)
        event = found.group(1).decode("utf-8", "replace") if found else None
    else:
        element = _ELEMENT.match(reason.split("first: ", 1)[-1])
        if isinstance(parsed, list) and element and int(element.group(1)) < len(parsed):
            parsed = parsed[int(element.group(1))]
        if isinstance(parsed, dict):
            event = parsed.get("event")
    if not isinstance(event, str) or not event:
        return None
    return event if _PLAIN_EVENT.fullmatch(event) else ascii(event[:100])
