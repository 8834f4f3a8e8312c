"""Webhook bodies into records: what one request's body holds, as a :class:`RecordBatch`.

A Drip webhook body is one event object or a JSON array of them; each becomes a record
validated like a line of a file (``loader.events``), a bad one a reject with its reason.
A body over the size limit is one reject holding its head.  This is the seam a second
webhook source would plug in at: the HTTP layer (:mod:`loader.serve`) only reads bodies
and answers, the lander (:mod:`loader.receive`) only commits batches.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

import orjson
from starlette.types import Receive

from .lander import RecordBatch

_ARRAY = re.compile(rb"\s*\[")


@dataclass
class Body:
    """The records of one body."""

    batch: RecordBatch = field(default_factory=RecordBatch)
    total: int = 1
    """Events the body holds: an array's elements, else 1."""
    reasons: list[str] = field(default_factory=list)
    """Why records were rejected, in body order (an array element's with its ``[index]``)."""


class BodyTimeout(Exception):
    """The client did not send its whole body in time (HTTP 408)."""


async def read_body(receive: Receive, limit: int, timeout: float) -> tuple[bytes, int] | None:
    """Read a request's body from ``receive``: ``(body, size)``, None when the client went away.

    Over ``limit`` bytes, ``body`` is its head (``limit`` bytes: kept for the rejects table)
    and ``size`` is ``limit + 1``: the rest is never read.

    Raises:
        BodyTimeout: the body did not arrive within ``timeout`` seconds.
    """
    body = bytearray()
    # A client trickling its body would hold a connection forever (Drip never does).
    # A bare timer that cancels this task: asyncio.timeout() cost a noticeable share of
    # serve's throughput.
    task = asyncio.current_task()
    assert task is not None
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            part = message.get("body", b"")
            if len(body) + len(part) > limit:
                body += part[: limit - len(body)]
                return bytes(body), limit + 1
            body += part
            if not message.get("more_body", False):
                return bytes(body), len(body)
    except asyncio.CancelledError:
        if not expired:
            raise
        task.uncancel()
        raise BodyTimeout from None
    finally:
        timer.cancel()


def parse_body(body: bytes, *, size: int, limit: int, origin: str, load_id: str) -> Body:
    """Validate ``body`` (``size`` bytes in all; only its head when over ``limit``) into records.

    ``origin`` says where it came from (stored with each reject; an array element's gets
    its ``[index]``).
    """
    parsed = Body()
    batch, reasons = parsed.batch, parsed.reasons
    if size > limit:
        reason = (
            f"body is {size} bytes, over the limit of {limit} "
            "(raise serve --max-body-bytes to accept it)"
        )
        batch.reject(reason, origin=origin, raw=body, size=size, load_id=load_id)
        reasons.append(reason)
    elif _ARRAY.match(body):
        parsed.total = _add_array(batch, body, origin, reasons, load_id=load_id)
    else:
        bad = batch.add(origin, body, load_id=load_id)
        if bad is not None:
            reasons.append(bad)
    return parsed


def _add_array(
    batch: RecordBatch, body: bytes, origin: str, reasons: list[str], *, load_id: str
) -> int:
    """Add each element of a JSON array body; return how many there are."""
    try:
        elements = orjson.loads(body)
    except orjson.JSONDecodeError:
        reasons.append(batch.add(origin, body, load_id=load_id) or "not JSON")
        return 1
    for index, element in enumerate(elements):
        reason = batch.add(f"{origin}[{index}]", orjson.dumps(element), load_id=load_id)
        if reason is not None:
            reasons.append(f"[{index}] {reason}")
    return len(elements)
