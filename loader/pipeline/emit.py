"""Emit: forward the warehouse's events to Segment's HTTP Tracking API through an outbox.

Once forwarding is on (:func:`enable_forwarding`, run by the first emit, queues every
event already in the warehouse), the transform queues every event it writes (of every
collection that is on: the email ones, and the opt-in ones of spec §9) in
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

The HTTP client (batching under Segment's limits, retries) is :mod:`loader.pipeline.segment`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from ..config import (
    DEFAULT_OUTBOX_RETENTION,
    DEFAULT_SEGMENT_HOST,
    SEGMENT_MAX_BATCH_EVENTS,
    check_segment_host,
)
from ..counts import Counts
from ..errors import ConfigError, EmitError, ForwardingOff
from ..warehouse.db import set_search_path, translating
from ..warehouse.mapping import CLAIM_PROPERTIES, claim_statement, claimable_collections
from ..warehouse.retention import cutoff, prune_outbox
from ..warehouse.sqlfiles import read_sql
from ..warehouse.tables import COLLECTION_PROPERTIES
from .segment import (
    MAX_EVENT_BYTES,
    Answer,
    Outcomes,
    RetryPolicy,
    SegmentBatchAPI,
    Stop,
    batches,
    deliver,
)

DEFAULT_CLAIM_SIZE = 10_000
"""Events claimed (and committed) per transaction: what a crash can make us send twice."""


@dataclass(kw_only=True)
class EmitReport(Counts):
    """What one forwarding run (``emit``) did."""

    schema: str

    def lines(self) -> list[str]:
        rate = self.sent / self.seconds if self.seconds else 0.0
        lines = [
            f"Forwarded to Segment in {self.seconds:.2f} s ({self.requests:,} request(s), "
            f"{self.retries:,} retried)" + (f", {rate:,.0f} events/s" if self.sent else "")
        ]
        for label, value in (
            ("sent", self.sent),
            ("failed", self.failed),
            ("requeued (--retry-failed)", self.requeued),
            ("queued (forwarding on)", self.queued),
        ):
            lines.append(f"  {label:<26}{value:>12,}")
        if self.failed:
            lines.append(
                f"  {self.failed:,} event(s) Segment cannot accept are marked failed in "
                f"{self.schema}._outbox (last_error says why); after a fix, "
                "run `drip-loader emit --retry-failed`."
            )
        return lines


def check_forwarding(
    *, write_key: str | None, host: str, batch_size: int = SEGMENT_MAX_BATCH_EVENTS
) -> str:
    """The write key, once the options of a forwarding run are checked (no I/O).

    Raises:
        ConfigError: no write key, a bad host or batch size.
    """
    if not write_key:
        raise ConfigError(
            "forwarding to Segment is off: no write key; set SEGMENT_WRITE_KEY or pass "
            "--segment-write-key"
        )
    check_segment_host(host)
    if not 1 <= batch_size <= SEGMENT_MAX_BATCH_EVENTS:
        raise ConfigError(
            f"batch size must be between 1 and {SEGMENT_MAX_BATCH_EVENTS:,} events per request"
        )
    return write_key


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
    *(p.column for p in CLAIM_PROPERTIES),
)
"""The columns ``sql/emit/claim.sql`` returns, in its order: the common ones, then every
property column of the registry (:data:`loader.mapping.CLAIM_PROPERTIES`)."""


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


def _stop_message(answer: Answer, report: Counts) -> str:
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


@dataclass(frozen=True)
class ForwardingState:
    """Whether forwarding to Segment is on, as ``_forwarding`` records it."""

    ever_on: bool
    """Forwarding was turned on once (the first ``emit``), so the transform queues events."""
    off_since: datetime | None
    """When ``emit --off`` turned it off (None while it is on or was never on)."""
    pruned_sent: int
    """Sent outbox rows retention has deleted so far."""

    @property
    def on(self) -> bool:
        return self.ever_on and self.off_since is None


def forwarding_state(conn: Connection) -> ForwardingState:
    """Read ``_forwarding`` (``conn`` has its search path on the warehouse schema)."""
    row = conn.execute(text(read_sql("emit/forwarding_state.sql"))).first()
    if row is None:
        return ForwardingState(ever_on=False, off_since=None, pruned_sent=0)
    return ForwardingState(ever_on=True, off_since=row.off_since, pruned_sent=int(row.pruned_sent))


def enable_forwarding(conn: Connection, *, again: bool = False) -> int:
    """Turn forwarding on: the first time, queue every event already in the warehouse
    (``tracks``); after ``emit --off`` (only with ``again``), queue the events received
    since the off (``sql/emit/reenable.sql`` says why no event goes twice).

    Until the first time the transform writes no ``_outbox`` rows (most warehouses never
    forward).  ``conn`` is in a transaction, with its search path on the warehouse schema.

    Returns:
        The events queued now (0 when forwarding was already on).

    Raises:
        ForwardingOff: forwarding was turned off and ``again`` is False.
    """
    state = forwarding_state(conn)
    if state.on:
        return 0
    if state.off_since is not None and not again:
        raise ForwardingOff(state.off_since)
    # wait for the transforms writing tracks, hold new ones until this commits
    conn.execute(text(read_sql("emit/lock_tracks.sql")))
    if state.off_since is not None:
        return int(conn.execute(text(read_sql("emit/reenable.sql"))).scalar_one())
    return int(conn.execute(text(read_sql("emit/enable.sql"))).rowcount)


@dataclass(frozen=True)
class TurnedOff:
    """What ``emit --off`` did."""

    off_since: datetime | None
    """Since when forwarding is off; None when it went back to never turned on."""
    already_off: bool
    """It was off before this call (nothing changed)."""
    dropped: int
    """Queued rows deleted: only when Segment had never confirmed any event."""
    pending: int
    """Events still queued (sent by ``emit --on``)."""
    failed: int
    """Events marked failed, still kept (``emit --on --retry-failed`` sends them again)."""

    def lines(self) -> list[str]:
        """What ``emit --off`` prints."""
        if self.off_since is None and self.already_off:
            return ["Forwarding to Segment is off: it was never turned on (nothing is queued)."]
        if self.off_since is None:
            return [
                "Forwarding to Segment is off. Segment had not confirmed any event, so the "
                f"{self.dropped:,} queued event(s) were dropped; the next `drip-loader emit` "
                "turns forwarding on and queues the whole warehouse again."
            ]
        head = (
            "Forwarding to Segment was already off"
            if self.already_off
            else "Forwarding to Segment is off"
        )
        return [
            f"{head} since {self.off_since:%Y-%m-%d %H:%M:%S %Z}: events received from then on "
            "are not queued, and nothing is sent.",
            f"  {self.pending:,} event(s) stay queued and {self.failed:,} failed one(s) are kept: "
            "Segment has not confirmed them.",
            "  `drip-loader emit --on` turns it on again: it sends those and every event received "
            "meanwhile, never one Segment already confirmed.",
        ]


def disable_forwarding(engine: Engine, *, schema: str) -> TurnedOff:
    """Turn forwarding off (``emit --off``): the transform stops queueing events.

    If Segment never confirmed an event (no row sent, none deleted by retention), the
    warehouse goes back to "never turned on": the queue is dropped, and the next ``emit``
    queues everything again (the wrong-key case: nothing reached Segment).  Otherwise
    the pending and failed rows stay (Segment has not confirmed them; dropping them would
    lose them for good), and ``emit --on`` later sends them with every event received
    while it was off.

    Raises:
        DatabaseError: the database failed; nothing changed.
    """
    with translating(), engine.connect() as conn:
        set_search_path(conn, schema)
        conn.commit()
        with conn.begin():
            # wait for mapping transactions and claims in flight (lock order: tracks, _outbox)
            conn.execute(text(read_sql("emit/lock_tracks.sql")))
            conn.execute(text(read_sql("emit/lock_outbox.sql")))
            state = forwarding_state(conn)
            queued = conn.execute(text(read_sql("emit/queued.sql"))).one()
            pending, failed = int(queued.pending), int(queued.failed)
            if not state.ever_on:
                return TurnedOff(None, already_off=True, dropped=0, pending=0, failed=0)
            if state.off_since is not None:
                return TurnedOff(
                    state.off_since, already_off=True, dropped=0, pending=pending, failed=failed
                )
            if not (queued.any_sent or state.pruned_sent):
                dropped = int(conn.execute(text(read_sql("emit/reset.sql"))).scalar_one())
                return TurnedOff(None, already_off=False, dropped=dropped, pending=0, failed=0)
            off_since: datetime = conn.execute(text(read_sql("emit/disable.sql"))).scalar_one()
            return TurnedOff(
                off_since, already_off=False, dropped=0, pending=pending, failed=failed
            )


def emit_events(
    engine: Engine,
    *,
    schema: str,
    write_key: str | None,
    host: str = DEFAULT_SEGMENT_HOST,
    retry_failed: bool = False,
    batch_size: int = SEGMENT_MAX_BATCH_EVENTS,
    claim_size: int = DEFAULT_CLAIM_SIZE,
    policy: RetryPolicy | None = None,
    on_batch: Callable[[int], None] | None = None,
    turn_on: bool = False,
    outbox_retention: timedelta = DEFAULT_OUTBOX_RETENTION,
) -> EmitReport:
    """Forward every pending event to Segment; mark what it accepted; then delete the sent
    rows older than ``outbox_retention`` (in batches: :func:`loader.warehouse.retention.prune_outbox`).

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
        turn_on: turn forwarding on again if ``emit --off`` turned it off.
        outbox_retention: how long a sent row is kept after Segment accepted it.

    Returns:
        The counts of this run.

    Raises:
        ConfigError: no write key, a bad host or batch size.
        ForwardingOff: forwarding was turned off and ``turn_on`` is False; nothing was sent.
        EmitError: Segment stayed unavailable or refused the key; what it accepted before
            is marked sent, the rest stays pending (``report`` has the counts).
        DatabaseError: the database failed; unconfirmed events stay pending.
    """
    write_key = check_forwarding(write_key=write_key, host=host, batch_size=batch_size)
    if claim_size < 1:
        raise ConfigError("claim size must be at least 1")
    started = time.perf_counter()
    report = EmitReport(schema=schema)
    mark = text(read_sql("emit/mark.sql"))
    stop: Stop | None = None
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
            report.queued = enable_forwarding(conn, again=turn_on)
        if retry_failed:
            with conn.begin():
                report.requeued = conn.execute(text(read_sql("emit/retry_failed.sql"))).rowcount
        while stop is None:
            outcomes: Outcomes = {}
            with conn.begin():  # holds the claim's row locks until the outcomes are written
                params = {"limit": claim_size, "after_queued_at": cursor[0], "after_id": cursor[1]}
                claim = claim_statement(claimable_collections(conn))
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
                    except Stop as exc:
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
        # after the sending: the events waiting matter more than the rows that are done
        with conn.begin():
            before = cutoff(conn, outbox_retention)
        report.pruned = prune_outbox(conn, before=before)
        report.requests, report.retries = api.requests, api.retries
    report.seconds = round(time.perf_counter() - started, 3)
    if stop is not None:
        raise EmitError(_stop_message(stop.answer, report), report=report)
    return report
