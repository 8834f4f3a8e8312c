"""Segment's HTTP Tracking API client: ``POST /v1/batch`` in batches under its limits, with
a bounded retry policy.  The outbox loop that decides what to send is :mod:`loader.emit`.

Why not the official ``segment-analytics-python`` client (2.4.0, read in the venv): its
``Client`` queues messages for a background thread and reports only failures, through
``on_error``; success is never confirmed per message, so "accepted" could only be inferred
from silence after ``flush()`` (a ``queue.join()`` with no timeout).  A 400 fails a whole
batch without saying which event is bad.  Its batch cap is checked after adding a message,
so a request can reach 475,000 bytes + one 32 KB message (over 500 KB).  Its logger writes
whole messages (e-mail addresses) at error level and the request body, which holds the
write key, at debug level.  And it is too slow for the target: in this same outbox loop
(same claim and mark statements, same local sink) it forwarded 13,000-15,000 events/s,
this module 33,000-35,000 (target: 20,000).  So :mod:`loader.emit` posts ``/v1/batch`` itself,
with the client's wire format (Basic auth with the write key, ``{"batch": [...],
"sentAt": ...}``) and a bounded retry policy like the client's.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType

import httpx

from .._version import __version__

MAX_EVENT_BYTES = 32 * 1024
"""Segment's limit for one message (the official client's ``MAX_MSG_SIZE``)."""
MAX_BATCH_BYTES = 500_000
"""Request body limit: Segment accepts under 500 KB; 500,000 is under it however KB is read."""
_BATCH_HEAD = b'{"batch":['
_SENT_AT_LENGTH = len(b'],"sentAt":"2026-01-01T00:00:00.000000+00:00"}')
# Statuses meaning "this request's content is invalid": split the batch to find the event.
_INVALID = frozenset({400, 413, 422})
# 4xx answers that are about load, not content: retried like 5xx.
_TRANSIENT_4XX = frozenset({408, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How one batch request is retried before the run gives up on it (every wait bounded)."""

    attempts: int = 6
    """Requests per batch when Segment answers 5xx, 408 or 429, or does not answer."""
    backoff: float = 0.5
    """Seconds before the second attempt; doubled for each next one (plus jitter)."""
    max_backoff: float = 30.0
    """Upper bound of one backoff wait."""
    max_retry_after: float = 300.0
    """Longest 429 ``Retry-After`` honoured; asked to wait longer, the run stops instead
    (the events stay pending) rather than retry before Segment allows it."""
    timeout: float = 30.0
    """Seconds to connect, to send the request, and to wait for the answer."""

    def delay(self, attempt: int) -> float:
        """Backoff before attempt ``attempt + 1``, for failures without a Retry-After."""
        base = min(self.backoff * 2.0 ** (attempt - 1), self.max_backoff)
        return base + random.uniform(0, base / 10)


def batches(
    messages: Iterable[tuple[str, bytes]], *, max_events: int, max_bytes: int = MAX_BATCH_BYTES
) -> Iterator[list[tuple[str, bytes]]]:
    """Group ``(id, message JSON)`` pairs into requests whose whole body stays under the limits."""
    budget = max_bytes - len(_BATCH_HEAD) - _SENT_AT_LENGTH
    batch: list[tuple[str, bytes]] = []
    size = 0
    for item in messages:
        added = len(item[1]) + (1 if batch else 0)  # the comma between messages
        if batch and (len(batch) >= max_events or size + added > budget):
            yield batch
            batch, size, added = [], 0, len(item[1])
        batch.append(item)
        size += added
    if batch:
        yield batch


@dataclass(frozen=True)
class Answer:
    status: int | None
    """HTTP status; None when Segment did not answer (timeout, connection refused or reset)."""
    error: str | None
    """None when Segment accepted the batch."""


class Stop(Exception):
    """Segment is unavailable or refuses us: stop the run, keep the rest pending."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.error)
        self.answer = answer


def _retry_after(value: str | None) -> float | None:
    """Seconds of a ``Retry-After`` header (delta-seconds or an HTTP date), if it has any."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class SegmentBatchAPI:
    """Posts batches to ``{host}/v1/batch`` with the write key, retrying what is transient."""

    def __init__(self, *, host: str, write_key: str, policy: RetryPolicy) -> None:
        self._policy = policy
        self._write_key = write_key
        self._client = httpx.Client(
            base_url=host.rstrip("/"),
            # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's
            # algorithm holds the body's last segment until the server's delayed ACK
            # (~40 ms per request on Linux).
            transport=httpx.HTTPTransport(
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
            ),
            auth=httpx.BasicAuth(write_key, ""),
            timeout=policy.timeout,
            headers={
                "Content-Type": "application/json",
                "User-Agent": f"drip-loader/{__version__}",
            },
        )
        self.requests = 0
        self.retries = 0

    def __enter__(self) -> SegmentBatchAPI:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client.close()

    def _scrub(self, message: str) -> str:
        # Whatever an endpoint answers is printed and stored: never let it echo the key.
        message = " ".join(message.split())[:300]
        return message.replace(self._write_key, "***") if self._write_key else message

    def post(self, messages: Sequence[bytes]) -> Answer:
        """Send one batch; retry 5xx, 408, 429 and no-answer within the policy's bounds."""
        joined = b",".join(messages)
        policy = self._policy
        answer = Answer(None, "not sent")
        for attempt in range(1, policy.attempts + 1):
            if attempt > 1:
                self.retries += 1
            self.requests += 1
            sent_at = datetime.now(UTC).isoformat(timespec="microseconds").encode()
            body = b"".join((_BATCH_HEAD, joined, b'],"sentAt":"', sent_at, b'"}'))
            try:
                response = self._client.post("/v1/batch", content=body)
            except httpx.TransportError as exc:
                reason = f"no answer from Segment ({type(exc).__name__}: {exc})"
                answer = Answer(None, self._scrub(reason))
                wait = policy.delay(attempt)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return Answer(status, None)
                detail = self._scrub(response.text) if response.content else response.reason_phrase
                answer = Answer(status, f"HTTP {status} from Segment: {detail}")
                if status < 500 and status not in _TRANSIENT_4XX:
                    return answer  # about the request itself: trying again gives the same answer
                asked = _retry_after(response.headers.get("Retry-After")) if status == 429 else None
                if asked is not None and asked > policy.max_retry_after:
                    return Answer(status, f"{answer.error} (asked to retry after {asked:.0f} s)")
                wait = asked if asked is not None else policy.delay(attempt)
            if attempt < policy.attempts:
                time.sleep(wait)
        return Answer(answer.status, f"{answer.error} (after {policy.attempts} attempts)")


Outcomes = dict[str, tuple[str, str | None]]
"""Event id → (new status, error) for the ``_outbox`` rows of one claim."""


def deliver(api: SegmentBatchAPI, batch: Sequence[tuple[str, bytes]], outcomes: Outcomes) -> None:
    """Send ``batch``; record each event's outcome in ``outcomes``.

    A batch refused as invalid is split in halves until the bad events are alone; they
    are marked failed and the others go through.

    Raises:
        Stop: Segment is unavailable or refuses the key or host; the events of the failed
            request are recorded as pending with the error, later ones are not touched.
    """
    answer = api.post([message for _, message in batch])
    if answer.error is None:
        for event_id, _ in batch:
            outcomes[event_id] = ("sent", None)
        return
    if answer.status in _INVALID:
        if len(batch) == 1:
            outcomes[batch[0][0]] = ("failed", f"Segment refused the event: {answer.error}")
            return
        middle = len(batch) // 2
        deliver(api, batch[:middle], outcomes)
        deliver(api, batch[middle:], outcomes)
        return
    for event_id, _ in batch:
        outcomes[event_id] = ("pending", answer.error)
    raise Stop(answer)
