"""Emit: forward landed email events to Segment's HTTP Tracking API through an outbox.

Once forwarding is on (:func:`enable_forwarding`, run by the first emit, queues every
event already in the warehouse), the transform queues every email event it writes in
``_outbox`` (status ``pending``), in the statement that writes the event, so nothing is
forwarded before it is in the warehouse.  :func:`emit_events` then repeats, until it has
walked past every pending event:

1. claim the next ``claim_size`` pending events, oldest first (``FOR UPDATE SKIP
   LOCKED``: concurrent emitters split the work, never send the same events at once);
2. build one ``track`` message per event from its warehouse row (spec §7);
3. post them to ``{host}/v1/batch`` in batches under Segment's limits (32 KB per event,
   500 KB and 2,500 events per request);
4. in the transaction that holds the claim, mark each event ``sent``, ``failed`` or
   still ``pending``, and commit.

Hence: an event Segment accepted is never claimed again; a crash between Segment's 200 and
the commit rolls the claim back, so the events go again with the same ``messageId`` (the
event id), which Segment drops as a repeat; a batch that keeps failing (5xx, timeouts, 429
past the wait budget) leaves its events pending for the next run and stops this one; a
batch Segment refuses as invalid (400/413/422) is split until the bad event is alone, and
that event, like any event over 32 KB, is marked ``failed`` with the reason, so it is not
retried forever (``--retry-failed`` sends failed events again).

Why not the official ``segment-analytics-python`` client (2.4.0, read in the venv): its
``Client`` queues messages for a background thread and reports only failures, through
``on_error``; success is never confirmed per message, so "accepted" could only be inferred
from silence after ``flush()`` (a ``queue.join()`` with no timeout).  A 400 fails a whole
batch without saying which event is bad.  Its batch cap is checked after adding a message,
so a request can reach 475,000 bytes + one 32 KB message (over 500 KB).  Its logger writes
whole messages (e-mail addresses) at error level and the request body, which holds the
write key, at debug level.  And it is too slow for the target: in this same outbox loop
(same claim and mark statements, same local sink) it forwarded 13,000-15,000 events/s,
this module 33,000-35,000 (target: 20,000).  So this module posts ``/v1/batch`` itself,
with the client's wire format (Basic auth with the write key, ``{"batch": [...],
"sentAt": ...}``) and a bounded retry policy like the client's.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from . import __version__
from .config import DEFAULT_SEGMENT_HOST
from .counts import Counts
from .db import set_search_path, translating
from .errors import ConfigError, EmitError
from .sqlfiles import read_sql
from .tables import COLLECTION_PROPERTIES

MAX_EVENT_BYTES = 32 * 1024
"""Segment's limit for one message (the official client's ``MAX_MSG_SIZE``)."""
MAX_BATCH_BYTES = 500_000
"""Request body limit: Segment accepts under 500 KB; 500,000 is under it however KB is read."""
MAX_BATCH_EVENTS = 2_500
"""Segment's limit of messages per ``/v1/batch`` request."""
DEFAULT_CLAIM_SIZE = 10_000
"""Events claimed (and committed) per transaction: what a crash can make us send twice."""

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


CLAIM_COLUMNS = (
    "queued_at",
    "id",
    "event",
    "event_text",
    "user_id",
    "anonymous_id",
    "timestamp",
    "context_traits_email",
    "context_ip",
    "context_user_agent",
    "context_library_name",
    "context_library_version",
    "context_integration_name",
    "context_integration_version",
    "email_id",
    "email_subject",
    "delivery_id",
    "link_url",
    "campaign_id",
    "campaign_name",
    "unsubscribe_scope",
)
"""The columns ``sql/emit/claim.sql`` returns, in its order."""


def track_message(row: Mapping[str, Any]) -> dict[str, Any]:
    """The Segment ``track`` call for one collection-table row (spec §7).

    Args:
        row: the :data:`CLAIM_COLUMNS` of the event's row (``timestamp`` as ISO 8601
            text with its offset); properties the collection does not have are None.
    """
    context: dict[str, Any] = {
        "integration": {
            "name": row["context_integration_name"],
            "version": row["context_integration_version"],
        },
        "library": {"name": row["context_library_name"], "version": row["context_library_version"]},
    }
    if row["context_traits_email"] is not None:
        context["traits"] = {"email": row["context_traits_email"]}
    if row["context_ip"] is not None:
        context["ip"] = row["context_ip"]
    if row["context_user_agent"] is not None:
        context["userAgent"] = row["context_user_agent"]
    message: dict[str, Any] = {
        "type": "track",
        "messageId": row["id"],
        "event": row["event_text"],
        "timestamp": row["timestamp"],
        "properties": {
            name: row[name] for name in COLLECTION_PROPERTIES[row["event"]] if row[name] is not None
        },
        "context": context,
    }
    # One or the other, never both (spec §3; the transform already guarantees it).
    if row["user_id"] is not None:
        message["userId"] = row["user_id"]
    else:
        message["anonymousId"] = row["anonymous_id"]
    return message


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
class _Answer:
    status: int | None
    """HTTP status; None when Segment did not answer (timeout, connection refused or reset)."""
    error: str | None
    """None when Segment accepted the batch."""


class _Stop(Exception):
    """Segment is unavailable or refuses us: stop the run, keep the rest pending."""

    def __init__(self, answer: _Answer) -> None:
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

    def post(self, messages: Sequence[bytes]) -> _Answer:
        """Send one batch; retry 5xx, 408, 429 and no-answer within the policy's bounds."""
        joined = b",".join(messages)
        policy = self._policy
        answer = _Answer(None, "not sent")
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
                answer = _Answer(None, self._scrub(reason))
                wait = policy.delay(attempt)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return _Answer(status, None)
                detail = self._scrub(response.text) if response.content else response.reason_phrase
                answer = _Answer(status, f"HTTP {status} from Segment: {detail}")
                if status < 500 and status not in _TRANSIENT_4XX:
                    return answer  # about the request itself: trying again gives the same answer
                asked = _retry_after(response.headers.get("Retry-After")) if status == 429 else None
                if asked is not None and asked > policy.max_retry_after:
                    return _Answer(status, f"{answer.error} (asked to retry after {asked:.0f} s)")
                wait = asked if asked is not None else policy.delay(attempt)
            if attempt < policy.attempts:
                time.sleep(wait)
        return _Answer(answer.status, f"{answer.error} (after {policy.attempts} attempts)")


Outcomes = dict[str, tuple[str, str | None]]
"""Event id → (new status, error) for the ``_outbox`` rows of one claim."""


def deliver(api: SegmentBatchAPI, batch: Sequence[tuple[str, bytes]], outcomes: Outcomes) -> None:
    """Send ``batch``; record each event's outcome in ``outcomes``.

    A batch refused as invalid is split in halves until the bad events are alone; they
    are marked failed and the others go through.

    Raises:
        _Stop: Segment is unavailable or refuses the key or host; the events of the failed
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
    raise _Stop(answer)


def _stop_message(answer: _Answer, report: Counts) -> str:
    if answer.status in (401, 403):
        what = (
            f"Segment refused the write key (HTTP {answer.status}): check --segment-write-key / "
            "SEGMENT_WRITE_KEY"
        )
    elif answer.status == 404:
        what = "Segment answered 404 for /v1/batch: check --segment-host / DRIP_LOADER_SEGMENT_HOST"
    else:
        what = f"Segment did not accept a batch: {answer.error}"
    return (
        f"{what}; {report.sent:,} event(s) were forwarded before that, the rest stay pending: "
        "run `drip-loader emit` again later"
    )


def _mark_params(outcomes: Outcomes) -> dict[str, Any]:
    """Bind values of ``sql/emit/mark.sql``: sent ids as one text, the others as arrays."""
    sent = [event_id for event_id, (status, _) in outcomes.items() if status == "sent"]
    others = [(i, status, error) for i, (status, error) in outcomes.items() if status != "sent"]
    return {
        "sent": "\n".join(sent),
        "ids": [i for i, _, _ in others],
        "statuses": [status for _, status, _ in others],
        "errors": [error for _, _, error in others],
    }


_SIZE_REASON = "the Segment message is {size:,} bytes, over Segment's limit of 32 KB per event"


def enable_forwarding(conn: Connection) -> int:
    """Turn forwarding on, once: queue every email event already in the warehouse.

    Until then the transform writes no ``_outbox`` rows (most warehouses never forward).
    ``conn`` is in a transaction, with its search path on the warehouse schema.

    Returns:
        The events queued now (0 when forwarding was already on).
    """
    if conn.execute(text(read_sql("emit/forwarding_on.sql"))).scalar():
        return 0
    conn.execute(text(read_sql("emit/lock_tracks.sql")))
    return int(conn.execute(text(read_sql("emit/enable.sql"))).rowcount)


def emit_events(
    engine: Engine,
    *,
    schema: str,
    write_key: str | None,
    host: str = DEFAULT_SEGMENT_HOST,
    retry_failed: bool = False,
    batch_size: int = MAX_BATCH_EVENTS,
    claim_size: int = DEFAULT_CLAIM_SIZE,
    policy: RetryPolicy | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Counts:
    """Forward every pending email event to Segment; mark what it accepted.

    Args:
        engine: the warehouse database.
        schema: warehouse schema (validated).
        write_key: the Segment source's write key (HTTP Basic user); never logged.
        host: base URL of the Tracking API; batches go to ``{host}/v1/batch``.
        retry_failed: first put events marked failed back in the queue.
        batch_size: most events per request (at most 2,500; requests also stay < 500 KB).
        claim_size: events claimed and committed per transaction.
        policy: retries and timeouts per request (default :class:`RetryPolicy`).
        on_batch: called with the number of events of each request Segment answered.

    Returns:
        The counts of this run.

    Raises:
        ConfigError: no write key, a bad host or batch size.
        EmitError: Segment stayed unavailable or refused the key; what it accepted before
            is marked sent, the rest stays pending (``report`` has the counts).
        DatabaseError: the database failed; unconfirmed events stay pending.
    """
    if not write_key:
        raise ConfigError(
            "forwarding to Segment is off: no write key; set SEGMENT_WRITE_KEY or pass "
            "--segment-write-key"
        )
    if not host.startswith(("http://", "https://")):
        raise ConfigError(
            f"invalid Segment host {host!r}: use a URL such as {DEFAULT_SEGMENT_HOST}"
        )
    if not 1 <= batch_size <= MAX_BATCH_EVENTS:
        raise ConfigError(
            f"batch size must be between 1 and {MAX_BATCH_EVENTS:,} events per request"
        )
    if claim_size < 1:
        raise ConfigError("claim size must be at least 1")
    started = time.perf_counter()
    report = Counts()
    claim, mark = text(read_sql("emit/claim.sql")), text(read_sql("emit/mark.sql"))
    stop: _Stop | None = None
    # Where the walk over pending rows is: each claim starts after the last one returned.
    cursor: tuple[datetime, str] = (datetime(1, 1, 1, tzinfo=UTC), "")
    with (
        SegmentBatchAPI(host=host, write_key=write_key, policy=policy or RetryPolicy()) as api,
        translating(),
        engine.connect() as conn,
    ):
        set_search_path(conn, schema)
        # Timestamps are written as text in the session's zone: make them UTC.
        conn.execute(text("SELECT set_config('TimeZone', 'UTC', false)"))
        conn.commit()
        with conn.begin():
            report.queued = enable_forwarding(conn)
        if retry_failed:
            with conn.begin():
                report.requeued = conn.execute(text(read_sql("emit/retry_failed.sql"))).rowcount
        while stop is None:
            outcomes: Outcomes = {}
            with conn.begin():  # holds the claim's row locks until the outcomes are written
                params = {"limit": claim_size, "after_queued_at": cursor[0], "after_id": cursor[1]}
                rows = conn.execute(claim, params).all()
                if not rows:
                    break
                cursor = max((row[0], row[1]) for row in rows)
                sendable: list[tuple[str, bytes]] = []
                for row in rows:
                    message = track_message(dict(zip(CLAIM_COLUMNS, row, strict=True)))
                    encoded, event_id = orjson.dumps(message), message["messageId"]
                    if len(encoded) > MAX_EVENT_BYTES:
                        outcomes[event_id] = ("failed", _SIZE_REASON.format(size=len(encoded)))
                    else:
                        sendable.append((event_id, encoded))
                for batch in batches(sendable, max_events=batch_size):
                    try:
                        deliver(api, batch, outcomes)
                    except _Stop as exc:
                        stop = exc
                        break
                    if on_batch is not None:
                        on_batch(len(batch))
                if outcomes:
                    conn.execute(mark, _mark_params(outcomes))
            for status, _ in outcomes.values():
                if status == "sent":
                    report.sent += 1
                elif status == "failed":
                    report.failed += 1
                else:
                    report.deferred += 1
        report.requests, report.retries = api.requests, api.retries
    report.seconds = round(time.perf_counter() - started, 3)
    if stop is not None:
        raise EmitError(_stop_message(stop.answer, report), report=report)
    return report
