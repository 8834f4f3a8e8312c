"""Forwarding to Segment (spec §7): the outbox, the message shape, the failure modes.

Every test talks to a real Postgres and to a real local HTTP server implementing
``/v1/batch`` (tests/support/segment_sink.py), never to a mock of the HTTP client.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from loader import __version__
from loader.cli.app import app
from loader.config import Settings
from loader.counts import Counts
from loader.domain.events import parse_record
from loader.domain.sample import generate_events
from loader.errors import EmitError
from loader.pipeline.emit import EmitReport, emit_events, enable_forwarding
from loader.pipeline.land import land_records
from loader.pipeline.run import run_pipeline
from loader.pipeline.segment import MAX_BATCH_BYTES, RetryPolicy, _retry_after, batches
from loader.warehouse import migrate
from loader.warehouse.db import make_engine, set_search_path
from loader.warehouse.status import Forwarding, warehouse_status
from tests.casefiles import case
from tests.support.segment_sink import SegmentSink, Stall

WRITE_KEY = "wk_9f3c2a71e5d84b06"
"""Recognisable, so a test can prove it never appears in any output."""

PLANNED = '{"code":"planned","message":"planned"}'
"""What the sink answers when a test planned a failure."""
REST_PENDING = "the rest stay pending: run `drip-loader emit` again later"

FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05, timeout=5.0)
"""Real retries with short waits: the tests stay quick and bounded."""

CLICK = case("email_link_clicked")  # spec §8
OPEN = {
    "event": "subscriber.opened_email",
    "data": {
        "account_id": "9999999",
        "subscriber": {"id": "z1togz2hcjrkpp5treip", "email": "john@acme.com", "user_id": "u_123"},
        "properties": {
            "delivery_id": "99999",
            "email_id": "88888",
            "email_subject": "Email Course: Day 1",
        },
    },
    "occurred_at": "2026-10-06T15:50:02Z",
}
UNSUBSCRIBE_CAMPAIGN = case("email_unsubscribed_campaign")  # spec §8
UNSUBSCRIBE_ALL = case("email_unsubscribed_all")  # spec §8
BOUNCE_WITHOUT_EMAIL = {
    "event": "subscriber.bounced",
    "data": {
        "account_id": "9999999",
        "subscriber": {"id": "q7w8e9r0t1y2u3i4o5p6"},
        "properties": {"delivery_id": "77777", "email_id": "88888", "email_subject": "Day 2"},
    },
    "occurred_at": "2026-10-09T08:00:00.123456Z",
}
NOT_EMAIL = {
    "event": "subscriber.applied_tag",
    "data": {
        "account_id": "9999999",
        "subscriber": {"id": "z1togz2hcjrkpp5treip"},
        "properties": {"tag": "SEO"},
    },
    "occurred_at": "2026-10-06T16:00:00Z",
}


def event_id(body: dict[str, Any]) -> str:
    return parse_record(orjson.dumps(body)).key


def land(settings: Settings, tmp_path: Path, lines: list[bytes]) -> None:
    path = tmp_path / f"events-{time.monotonic_ns()}.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    run_pipeline(settings, [str(path)])


def land_bodies(settings: Settings, tmp_path: Path, *bodies: dict[str, Any]) -> list[str]:
    land(settings, tmp_path, [orjson.dumps(b) for b in bodies])
    return [event_id(b) for b in bodies]


def land_sample(settings: Settings, tmp_path: Path, events: int) -> set[str]:
    """Land ``events`` sample webhook bodies; the ids of the email events among them."""
    land(settings, tmp_path, list(generate_events(events=events, seed=3)))
    engine = make_engine(settings.database_url or "", null_pool=True)
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.text("SELECT id FROM drip.tracks")).scalars())
    finally:
        engine.dispose()


def outbox(engine: Engine) -> dict[str, tuple[str, int, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, status, attempts, last_error FROM drip._outbox"))
        return {r.id: (r.status, r.attempts, r.last_error) for r in rows}


def emit(engine: Engine, sink: SegmentSink, **options: Any) -> Counts:
    options.setdefault("policy", FAST)
    return emit_events(engine, schema="drip", write_key=WRITE_KEY, host=sink.url, **options)


@pytest.fixture
def sink() -> Any:
    with SegmentSink(write_key=WRITE_KEY) as server:
        yield server


def test_every_email_event_arrives_as_a_segment_track_call(settings, engine, tmp_path, sink):
    ids = land_bodies(
        settings,
        tmp_path,
        CLICK,
        OPEN,
        UNSUBSCRIBE_CAMPAIGN,
        UNSUBSCRIBE_ALL,
        BOUNCE_WITHOUT_EMAIL,
        NOT_EMAIL,
    )
    click, opened, unsub_campaign, unsub_all, bounce, _ = ids
    integration = {"name": "drip", "version": "1.0.0"}
    library = {"name": "drip-loader", "version": __version__}

    report = emit(engine, sink)

    assert {m["messageId"]: m for m in sink.messages} == {
        click: {
            "type": "track",
            "messageId": click,
            "event": "Email Link Clicked",
            "anonymousId": "john@acme.com",
            "timestamp": "2026-10-06T15:52:58+00:00",
            "properties": {
                "email_id": "88888",
                "email_subject": "Email Course: Day 1",
                "delivery_id": "99999",
                "link_url": "https://www.example.com/pricing?utm_source=drip",
            },
            "context": {
                "integration": integration,
                "library": library,
                "traits": {"email": "john@acme.com"},
                "ip": "203.0.113.7",
                "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)",
            },
        },
        opened: {
            "type": "track",
            "messageId": opened,
            "event": "Email Opened",
            "userId": "u_123",
            "timestamp": "2026-10-06T15:50:02+00:00",
            "properties": {
                "email_id": "88888",
                "email_subject": "Email Course: Day 1",
                "delivery_id": "99999",
            },
            "context": {
                "integration": integration,
                "library": library,
                "traits": {"email": "john@acme.com"},
            },
        },
        unsub_campaign: {
            "type": "track",
            "messageId": unsub_campaign,
            "event": "Email Unsubscribed",
            "userId": "u_456",
            "timestamp": "2026-10-07T09:12:40+00:00",
            "properties": {
                "campaign_id": "4455667",
                "campaign_name": "Onboarding course",
                "unsubscribe_scope": "campaign",
            },
            "context": {
                "integration": integration,
                "library": library,
                "traits": {"email": "jane@example.org"},
            },
        },
        unsub_all: {
            "type": "track",
            "messageId": unsub_all,
            "event": "Email Unsubscribed",
            "anonymousId": "jane@example.org",
            "timestamp": "2026-10-08T09:00:00+00:00",
            "properties": {"unsubscribe_scope": "all"},
            "context": {
                "integration": integration,
                "library": library,
                "traits": {"email": "jane@example.org"},
            },
        },
        bounce: {
            "type": "track",
            "messageId": bounce,
            "event": "Email Bounced",
            "anonymousId": "drip:q7w8e9r0t1y2u3i4o5p6",
            "timestamp": "2026-10-09T08:00:00.123456+00:00",
            "properties": {"email_id": "88888", "email_subject": "Day 2", "delivery_id": "77777"},
            "context": {"integration": integration, "library": library},
        },
    }
    # this first emit turned forwarding on and queued the five events loaded before it
    assert report == EmitReport(schema="drip", sent=5, queued=5, requests=1, seconds=report.seconds)
    assert outbox(engine) == dict.fromkeys(
        ids[:5], ("sent", 1, None)
    )  # the tag event is not queued


def test_until_the_first_emit_a_load_queues_nothing_for_segment(settings, engine, tmp_path):
    # Most warehouses never forward: an outbox nobody reads must not grow with every load.
    ids = land_sample(settings, tmp_path, 300)
    assert outbox(engine) == {}
    assert warehouse_status(engine, schema="drip").segment == Forwarding(0, 0, 0, on=False)

    with engine.connect() as conn:
        set_search_path(conn, "drip")
        conn.commit()
        with conn.begin():
            assert enable_forwarding(conn) == len(ids)  # the history, once
        with conn.begin():
            assert enable_forwarding(conn) == 0
    later = land_bodies(settings, tmp_path, OPEN)  # from now on the transform queues

    assert outbox(engine) == dict.fromkeys([*ids, *later], ("pending", 0, None))


def test_forwarding_turned_on_during_a_load_misses_no_event(settings, engine, tmp_path):
    # A load's chunks commit before, while and after the first emit turns forwarding on:
    # whichever side of it a chunk falls, each of its events reaches the outbox once.
    bodies = list(generate_events(events=20_000, seed=5))
    records = [(f"big:{n}", b, len(b)) for n, b in enumerate(bodies)]
    failures: list[BaseException] = []

    def load() -> None:
        try:
            land_records(
                engine, records, schema="drip", load_id="big", batch_size=250,
                max_record_bytes=1 << 20, on_chunk=lambda _: time.sleep(0.01),
            )  # fmt: skip
        except BaseException as exc:
            failures.append(exc)

    def tracks() -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM drip.tracks")).scalar_one())

    thread = threading.Thread(target=load)
    thread.start()
    while tracks() == 0 and thread.is_alive():
        time.sleep(0.005)
    with engine.connect() as conn:
        set_search_path(conn, "drip")
        conn.commit()
        with conn.begin():
            queued = enable_forwarding(conn)
    thread.join(timeout=120)

    assert not failures
    total = tracks()
    assert 0 < queued < total  # turned on mid-load
    with engine.connect() as conn:
        missing = conn.execute(
            sa.text("SELECT count(*) FROM drip.tracks t WHERE NOT EXISTS"
                    " (SELECT FROM drip._outbox o WHERE o.id = t.id)")
        ).scalar_one()  # fmt: skip
    assert (missing, len(outbox(engine))) == (0, total)


def test_a_second_emit_sends_nothing(settings, engine, tmp_path, sink):
    ids = land_sample(settings, tmp_path, 1500)

    first = emit(engine, sink)
    second = emit(engine, sink)

    assert first.sent == len(ids)
    assert Counter(sink.message_ids()) == Counter(ids)  # each event exactly once
    assert (second.sent, second.requests) == (0, 0)
    assert len(sink.requests) == first.requests
    assert warehouse_status(engine, schema="drip").segment == Forwarding(
        forwarded=len(ids), pending=0, failed=0, on=True
    )


def test_events_landed_after_an_emit_go_with_the_next_one(settings, engine, tmp_path, sink):
    first = land_bodies(settings, tmp_path, CLICK)
    emit(engine, sink)
    later = land_bodies(settings, tmp_path, OPEN)

    report = emit(engine, sink)

    assert report.sent == 1
    assert sink.message_ids() == first + later


def test_requests_stay_under_500_kb_packed_by_bytes(settings, engine, tmp_path, sink):
    ids = land_sample(settings, tmp_path, 3000)

    report = emit(engine, sink)

    assert Counter(sink.message_ids()) == Counter(ids)
    sizes = [r.size for r in sink.requests]
    assert all(r.status == 200 for r in sink.requests) and len(sizes) == report.requests
    assert max(sizes) <= MAX_BATCH_BYTES
    assert max(sizes) > 0.95 * MAX_BATCH_BYTES  # packed close to the limit, not far under it
    assert max(r.messages for r in sink.requests) < 2500


def test_requests_carry_at_most_batch_size_events(settings, engine, tmp_path, sink):
    ids = land_sample(settings, tmp_path, 1000)

    emit(engine, sink, batch_size=100, claim_size=250)

    assert Counter(sink.message_ids()) == Counter(ids)
    assert [r.messages for r in sink.requests][:3] == [100, 100, 50]  # claims of 250
    assert max(r.messages for r in sink.requests) == 100


def test_5xx_is_retried_and_then_delivered(settings, engine, tmp_path, sink):
    ids = land_bodies(settings, tmp_path, CLICK, OPEN)
    sink.plan(500, 503)

    report = emit(engine, sink)

    assert [r.status for r in sink.requests] == [500, 503, 200]
    assert (report.sent, report.requests, report.retries) == (2, 3, 2)
    assert sorted(sink.message_ids()) == sorted(ids)
    assert outbox(engine) == dict.fromkeys(ids, ("sent", 1, None))


def test_429_waits_for_retry_after_then_delivers(settings, engine, tmp_path, sink):
    ids = land_bodies(settings, tmp_path, CLICK)
    sink.plan((429, "1"))

    started = time.monotonic()
    report = emit(engine, sink)
    elapsed = time.monotonic() - started

    assert 1.0 <= elapsed < 10.0  # honoured the Retry-After of 1 s (not the 0.01 s backoff)
    assert [r.status for r in sink.requests] == [429, 200]
    assert report.sent == 1 and sink.message_ids() == ids


def test_a_retry_after_beyond_the_budget_stops_and_keeps_the_events(
    settings, engine, tmp_path, sink
):
    ids = land_bodies(settings, tmp_path, CLICK)
    sink.plan((429, "3600"))

    with pytest.raises(EmitError) as caught:
        emit(engine, sink)

    assert str(caught.value) == (
        f"Segment did not accept a batch: HTTP 429 from Segment: {PLANNED} "
        f"(asked to retry after 3600 s); 0 event(s) were forwarded before that, {REST_PENDING}"
    )
    assert [r.status for r in sink.requests] == [429]
    assert outbox(engine)[ids[0]][:2] == ("pending", 1)


def test_a_batch_that_keeps_failing_stays_pending_for_the_next_run(
    settings, engine, tmp_path, sink
):
    ids = land_bodies(
        settings, tmp_path, CLICK, OPEN, UNSUBSCRIBE_CAMPAIGN, UNSUBSCRIBE_ALL, BOUNCE_WITHOUT_EMAIL
    )
    sink.plan(200, 500, 500, 500)  # the second request fails all 3 attempts

    with pytest.raises(EmitError) as caught:
        emit(engine, sink, batch_size=2)

    assert str(caught.value) == (
        f"Segment did not accept a batch: HTTP 500 from Segment: {PLANNED} (after 3 attempts); "
        f"2 event(s) were forwarded before that, {REST_PENDING}"
    )
    assert caught.value.report.sent == 2 and caught.value.report.deferred == 2
    state = outbox(engine)
    first_two = set(sink.message_ids())
    assert sorted(s[:2] for i, s in state.items() if i in first_two) == [("sent", 1)] * 2
    tried = [s for s in state.values() if s[0] == "pending" and s[1] == 1]
    assert tried == [("pending", 1, f"HTTP 500 from Segment: {PLANNED} (after 3 attempts)")] * 2
    assert sorted(s[:2] for s in state.values() if s[1] == 0) == [("pending", 0)]  # never tried

    report = emit(engine, sink, batch_size=2)

    assert report.sent == 3
    assert Counter(sink.message_ids()) == Counter(ids)  # each once: nothing was accepted twice


def test_a_stalled_request_times_out_backs_off_and_delivers(settings, engine, tmp_path, sink):
    ids = land_bodies(settings, tmp_path, CLICK, OPEN)
    sink.plan(Stall())

    report = emit(engine, sink, policy=RetryPolicy(attempts=3, backoff=0.01, timeout=0.5))
    sink.release()
    deadline = time.monotonic() + 10
    while len(sink.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)

    assert (report.sent, report.retries) == (2, 1)
    assert outbox(engine) == dict.fromkeys(ids, ("sent", 1, None))
    # The stalled request reached Segment too: a repeat, with the same messageId.
    assert Counter(sink.message_ids()) == Counter(ids * 2)


def test_no_answer_at_all_is_retried_then_left_pending(settings, engine, tmp_path):
    ids = land_bodies(settings, tmp_path, CLICK)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        host = f"http://127.0.0.1:{probe.getsockname()[1]}"

    with pytest.raises(EmitError) as caught:
        emit_events(engine, schema="drip", write_key=WRITE_KEY, host=host, policy=FAST)

    assert caught.value.report.requests == 3
    status, attempts, error = outbox(engine)[ids[0]]
    assert (status, attempts) == ("pending", 1)
    refused = "ConnectError: [Errno 111] Connection refused"
    assert error == f"no answer from Segment ({refused}) (after 3 attempts)"


def test_an_event_over_32_kb_is_marked_failed_with_the_reason(settings, engine, tmp_path, sink):
    huge = {
        **OPEN,
        "data": {
            **OPEN["data"],
            "properties": {**OPEN["data"]["properties"], "email_subject": "x" * 40_000},
        },
    }
    huge_id, click, _ = land_bodies(settings, tmp_path, huge, CLICK, UNSUBSCRIBE_ALL)

    report = emit(engine, sink)

    assert (report.sent, report.failed) == (2, 1)
    status, attempts, error = outbox(engine)[huge_id]
    assert (status, attempts) == ("failed", 1)
    assert re.fullmatch(
        r"the Segment message is 40,\d{3} bytes, over Segment's limit of 32 KB per event", error
    )
    assert huge_id not in sink.message_ids()
    # Not retried forever: a later run leaves it alone, --retry-failed tries it again.
    assert emit(engine, sink).requests == 0
    again = emit(engine, sink, retry_failed=True)
    assert (again.requeued, again.failed, again.sent) == (1, 1, 0)
    assert outbox(engine)[huge_id][:2] == ("failed", 2)
    assert warehouse_status(engine, schema="drip").segment == Forwarding(
        forwarded=2, pending=0, failed=1, on=True
    )


def test_an_event_segment_refuses_is_isolated_and_the_rest_delivered(
    settings, engine, tmp_path, sink
):
    ids = land_bodies(
        settings, tmp_path, CLICK, OPEN, UNSUBSCRIBE_CAMPAIGN, UNSUBSCRIBE_ALL, BOUNCE_WITHOUT_EMAIL
    )
    sink.reject_ids = {ids[2]}

    report = emit(engine, sink)

    assert (report.sent, report.failed) == (4, 1)
    assert sorted(sink.message_ids()) == sorted(ids[:2] + ids[3:])
    assert outbox(engine)[ids[2]] == (
        "failed",
        1,
        "Segment refused the event: HTTP 400 from Segment: "
        '{"code":"invalid_request","message":"invalid message"}',
    )


def test_a_wrong_write_key_stops_and_keeps_everything_pending(settings, engine, tmp_path):
    ids = land_bodies(settings, tmp_path, CLICK, OPEN)

    with SegmentSink(write_key="the-right-key") as other, pytest.raises(EmitError) as caught:
        emit(engine, other)

    assert str(caught.value) == (
        "Segment refused the write key (HTTP 401): check --segment-write-key / SEGMENT_WRITE_KEY; "
        f"0 event(s) were forwarded before that, {REST_PENDING}"
    )
    assert [r.status for r in other.requests] == [401]  # not retried: it cannot get better
    assert {i: s[0] for i, s in outbox(engine).items()} == dict.fromkeys(ids, "pending")


def test_killed_mid_batch_the_next_run_delivers_the_rest_with_the_same_ids(
    settings, engine, tmp_path, sink, db_url
):
    ids = land_sample(settings, tmp_path, 100)
    sink.plan(200, 200, Stall())
    env = {
        **os.environ,
        "DRIP_LOADER_DATABASE_URL": db_url,
        "SEGMENT_WRITE_KEY": WRITE_KEY,
        "DRIP_LOADER_SEGMENT_HOST": sink.url,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "loader", "emit", "--batch-size", "20"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert sink.stalled.wait(60), "the emitter never reached its third request"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    # Segment got the stalled batch too: the crash fell between send and confirmation.
    sink.release()
    wait_for(lambda: len(sink.requests) == 3)
    wait_for(lambda: not open_transactions(engine))  # the killed session's locks are gone

    assert {s[0] for s in outbox(engine).values()} == {"pending"}  # nothing was confirmed
    report = emit(engine, sink, batch_size=20)

    assert report.sent == len(ids)
    received = Counter(sink.message_ids())
    assert set(received) == ids
    assert sorted(received.values()).count(2) == 60  # the 3 batches sent before the kill, again
    copies: dict[str, list[dict[str, Any]]] = {}
    for message in sink.messages:
        copies.setdefault(message["messageId"], []).append(message)
    assert all(all(c == group[0] for c in group) for group in copies.values())
    assert {s[0] for s in outbox(engine).values()} == {"sent"}


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def open_transactions(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
                )
            ).scalar_one()
        )


def test_two_emitters_at_once_never_send_the_same_event(settings, engine, tmp_path, sink):
    ids = land_sample(settings, tmp_path, 800)
    reports: list[Counts] = []

    def run() -> None:
        reports.append(emit(engine, sink, claim_size=50, batch_size=20))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(reports) == 2 and sum(r.sent for r in reports) == len(ids)
    assert Counter(sink.message_ids()) == Counter(ids)


def test_the_outbox_is_backfilled_with_events_landed_before_it_existed(settings, engine, tmp_path):
    ids = land_bodies(settings, tmp_path, CLICK, OPEN, NOT_EMAIL)[:2]
    migrate.downgrade(engine, schema="drip", revision="0001")

    migrate.upgrade(engine, schema="drip")

    assert outbox(engine) == dict.fromkeys(ids, ("pending", 0, None))


def test_a_rebuild_keeps_what_segment_already_accepted(settings, engine, tmp_path, sink):
    from loader.pipeline.rebuild import rebuild_tables

    ids = land_bodies(settings, tmp_path, CLICK, OPEN)
    emit(engine, sink)

    rebuild_tables(engine, schema="drip", batch_size=1000)

    assert outbox(engine) == dict.fromkeys(ids, ("sent", 1, None))
    assert emit(engine, sink).requests == 0


def test_batches_respect_the_byte_and_count_limits():
    messages = [(f"id{i}", b"x" * 100) for i in range(50)]

    by_count = list(batches(messages, max_events=20))
    by_bytes = list(batches(messages, max_events=2500, max_bytes=1000))

    assert [len(b) for b in by_count] == [20, 20, 10]
    overhead = len(b'{"batch":[') + len(b'],"sentAt":"2026-01-01T00:00:00.000000+00:00"}')
    assert all(overhead + sum(len(m) for _, m in b) + len(b) - 1 <= 1000 for b in by_bytes)
    assert [len(b) for b in by_bytes] == [9] * 5 + [5]


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    assert _retry_after("1") == 1.0
    assert _retry_after(None) is None
    assert _retry_after("soon") is None
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: no wait


# --- the command line -------------------------------------------------------------------


def invoke(args: list[str], db_url: str, **env: str) -> Any:
    base = {
        "DRIP_LOADER_DATABASE_URL": db_url,
        "SEGMENT_WRITE_KEY": "",
        "DRIP_LOADER_SEGMENT_HOST": "",
    }
    return CliRunner().invoke(app, args, env={**base, **env})


def test_emit_without_a_write_key_says_forwarding_is_off(db_url):
    result = invoke(["emit"], db_url)

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: forwarding to Segment is off: no write key; "
        "set SEGMENT_WRITE_KEY or pass --segment-write-key\n"
    )


def test_emit_refuses_a_schema_that_is_not_migrated(empty_db_url):
    result = invoke(["emit", "--segment-write-key", WRITE_KEY], empty_db_url)

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: schema 'drip' is at revision none, not {migrate.head_revision()}: "
        "run `drip-loader migrate` (or `drip-loader load`) first\n"
    )


def test_emit_prints_what_it_forwarded_and_never_the_write_key(settings, tmp_path, sink, db_url):
    land_bodies(settings, tmp_path, CLICK, OPEN)

    result = invoke(
        ["emit"], db_url, SEGMENT_WRITE_KEY=WRITE_KEY, DRIP_LOADER_SEGMENT_HOST=sink.url
    )
    status = invoke(["status"], db_url, SEGMENT_WRITE_KEY=WRITE_KEY)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert (
        lines[0].startswith("Forwarded to Segment in ") and "(1 request(s), 0 retried)" in lines[0]
    )
    assert lines[1:] == [
        "  sent                                 2",
        "  failed                               0",
        "  requeued (--retry-failed)            0",
        "  queued (forwarding on)               2",
    ]
    assert "  forwarded to Segment               2" in status.stdout.splitlines()
    assert "  pending for Segment                0" in status.stdout.splitlines()
    assert WRITE_KEY not in result.output + status.output


def test_emit_with_a_refused_key_fails_in_one_line_without_printing_it(settings, tmp_path, db_url):
    land_bodies(settings, tmp_path, CLICK)
    wrong = "wk_wrong_but_secret_123"

    with SegmentSink(write_key="the-right-key") as other:
        result = invoke(["emit", "--segment-write-key", wrong, "--segment-host", other.url], db_url)

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Segment refused the write key (HTTP 401): "
        "check --segment-write-key / SEGMENT_WRITE_KEY; "
        f"0 event(s) were forwarded before that, {REST_PENDING}\n"
    )
    assert wrong not in result.output


def test_the_write_key_is_not_in_the_settings_repr():
    settings = Settings.from_env({"SEGMENT_WRITE_KEY": WRITE_KEY, "DRIP_LOADER_HOME": "/tmp/x"})

    assert settings.segment_write_key == WRITE_KEY
    assert WRITE_KEY not in repr(settings)


def test_load_with_emit_forwards_after_the_transform(tmp_path, sink, db_url):
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(b) for b in (CLICK, OPEN, NOT_EMAIL)) + b"\n")

    result = invoke(
        ["load", str(path), "--emit"],
        db_url,
        SEGMENT_WRITE_KEY=WRITE_KEY,
        DRIP_LOADER_SEGMENT_HOST=sink.url,
    )

    assert result.exit_code == 0, result.output
    assert "  sent to Segment                2" in result.stdout.splitlines()
    assert sorted(sink.message_ids()) == sorted([event_id(CLICK), event_id(OPEN)])
    assert WRITE_KEY not in result.output


def test_load_with_emit_but_no_key_loads_and_says_forwarding_is_off(tmp_path, db_url):
    path = tmp_path / "events.ndjson"
    path.write_bytes(orjson.dumps(CLICK) + b"\n")

    result = invoke(["load", str(path), "--emit"], db_url)

    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "Forwarding to Segment is off: no write key "
        "(set SEGMENT_WRITE_KEY or pass --segment-write-key).\n"
    )


@pytest.mark.parametrize("command", ["emit", "load"])
def test_forwarding_options_have_help(command):
    result = CliRunner().invoke(app, [command, "--help"], env={"SEGMENT_WRITE_KEY": WRITE_KEY})

    assert result.exit_code == 0
    assert "--segment-write-key" in result.stdout and "--segment-host" in result.stdout
    assert WRITE_KEY not in result.stdout
