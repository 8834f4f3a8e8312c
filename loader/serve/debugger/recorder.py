"""The debugger's live stream: the last webhook requests of this process, as they were received.

Recording is on the webhook's hot path, so it only keeps references: the body bytes the
handler already holds, its status and origin, in a bounded ring.  Nothing is parsed,
masked or serialised until a viewer asks (:mod:`loader.serve.debugger.view`), so with
nobody watching a request costs one small tuple and a deque append.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

CAPACITY = 500
"""Requests the ring keeps (the oldest are dropped)."""
BODY_CAP = 32 * 1024
"""Bytes of a body the ring keeps: a flood of large bodies cannot hold much memory."""


class Entry(NamedTuple):
    """One webhook request as answered."""

    seq: int
    """Increases by one per request recorded (the page asks for those after the last it has)."""
    at: float
    """Unix time of the answer."""
    status: int
    client: str
    origin: str
    """The origin its records were stored with (``webhook:<client>:<arrival>``)."""
    size: int
    """Bytes in the body (declared, when it was over the limit)."""
    body: bytes | None
    """The body, or its first :data:`BODY_CAP` bytes; None when it was not read."""
    reasons: Sequence[str]
    """Why it, or some of its records, were refused (the first one is in the answer)."""


class Recorder:
    """A ring of the last ``capacity`` webhook requests."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._ring: deque[Entry] = deque(maxlen=capacity)
        self._next = itertools.count(1).__next__
        self.capacity = capacity

    def record(
        self,
        status: int,
        *,
        client: str,
        origin: str,
        size: int,
        body: bytes | None,
        reasons: Sequence[str] = (),
    ) -> None:
        """Keep one answered request (called by the webhook handler: keep it cheap)."""
        if body is not None and len(body) > BODY_CAP:
            body = body[:BODY_CAP]
        self._ring.append(
            Entry(self._next(), time.time(), status, client, origin, size, body, reasons)
        )

    def since(self, seq: int) -> list[Entry]:
        """The requests recorded after ``seq``, oldest first (call from the event loop)."""
        newer: list[Entry] = []
        for entry in reversed(self._ring):
            if entry.seq <= seq:
                break
            newer.append(entry)
        newer.reverse()
        return newer
