"""``drip-loader serve``: real HTTP to a real server process, a real PostgreSQL behind it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from loader.cli.app import app
from loader.counts import Counts
from loader.domain.events import COLLECTIONS, parse_record
from loader.domain.sample import generate_events
from loader.serve.lander import GroupCommitLander, RecordBatch
from loader.warehouse.db import make_engine, set_search_path
from tests.casefiles import case
from tests.support.serve import BIN, TOKEN, ServeProcess

FRESH_WITHIN = 5.0
ORIGIN = re.compile(r"^webhook:127\.0\.0\.1:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")

CLICK = case("email_link_clicked")  # spec §8
UNSUBSCRIBE_CAMPAIGN = case("email_unsubscribed_campaign")  # spec §8
UNSUBSCRIBE_ALL = case("email_unsubscribed_all")  # spec §8


def email_event(kind: str, n: int) -> dict[str, Any]:
    """An email event of ``kind`` for subscriber ``n`` (a delivery of email 88888)."""
    return {
        "event": kind,
        "data": {
            "account_id": "9999999",
            "subscriber": {
                "id": f"sub{n:05d}",
                "email": f"user{n}@example.com",
                "user_id": f"u_{n}",
            },
            "properties": {
                "delivery_id": str(990000 + n),
                "email_id": "88888",
                "email_subject": "Email Course: Day 1",
            },
        },
        "occurred_at": "2026-10-06T15:50:02Z",
    }


EVERY_EMAIL_EVENT = {
    "email_delivered": email_event("subscriber.received_email", 1),
    "email_opened": email_event("subscriber.opened_email", 2),
    "email_link_clicked": CLICK,
    "email_bounced": email_event("subscriber.bounced", 3),
    "email_marked_as_spam": email_event("subscriber.complained", 4),
    "email_unsubscribed": UNSUBSCRIBE_CAMPAIGN,
    "email_unsubscribed_all": UNSUBSCRIBE_ALL,
}
APPLIED_TAG = {
    "event": "subscriber.applied_tag",
    "data": {
        "account_id": "9999999",
        "subscriber": {"id": "sub00009"},
        "properties": {"tag": "VIP"},
    },
    "occurred_at": "2026-10-06T16:00:00Z",
}


def body(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def key(event: dict[str, Any]) -> str:
    return parse_record(body(event)).key


@pytest.fixture
def serve(db_url: str, tmp_path: Path) -> Iterator[ServeProcess]:
    with ServeProcess(db_url, tmp_path / "serve.log") as server:
        server.wait_healthy()
        yield server


def rows(engine: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        set_search_path(conn, "drip")
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def count(engine: Engine, table: str) -> int:
    return int(rows(engine, f"SELECT count(*) AS n FROM {table}")[0]["n"])


def wait_until(check: Any, *, within: float) -> float:
    """Seconds until ``check()`` is true; fails after ``within`` seconds."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"not true within {within} s")
        time.sleep(0.05)
    return time.monotonic() - started


def metric(server: ServeProcess, line_start: str) -> float:
    text = server.http.get("/metrics").text
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{line_start} not in /metrics:\n{text}")


# -- receiving and freshness -------------------------------------------------------------


def test_each_email_event_is_in_its_table_and_tracks_within_5_seconds(
    serve: ServeProcess, engine: Engine
) -> None:
    for event in EVERY_EMAIL_EVENT.values():
        response = serve.post(body(event))
        assert (response.status_code, response.json()) == (200, {"received": 1})
    answered = time.monotonic()

    def all_there() -> bool:
        return count(engine, "tracks") == 7 and all(
            count(engine, table) == n
            for table, n in [
                ("email_delivered", 1),
                ("email_opened", 1),
                ("email_link_clicked", 1),
                ("email_bounced", 1),
                ("email_marked_as_spam", 1),
                ("email_unsubscribed", 2),
            ]
        )

    wait_until(all_there, within=FRESH_WITHIN)
    assert time.monotonic() - answered < FRESH_WITHIN

    click = rows(engine, "SELECT * FROM email_link_clicked")[0]
    assert click["id"] == key(CLICK)
    assert (click["anonymous_id"], click["user_id"]) == ("john@acme.com", None)
    assert (click["event"], click["event_text"]) == ("email_link_clicked", "Email Link Clicked")
    assert click["link_url"] == "https://www.example.com/pricing?utm_source=drip"
    assert (click["context_ip"], click["context_user_agent"]) == (
        "203.0.113.7",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)",
    )
    assert click["timestamp"] == datetime(2026, 10, 6, 15, 52, 58, tzinfo=UTC)
    assert click["sent_at"] == click["received_at"]
    unsubscribes = rows(
        engine,
        "SELECT id, user_id, campaign_id, campaign_name, unsubscribe_scope, timestamp "
        "FROM email_unsubscribed ORDER BY timestamp",
    )
    assert unsubscribes == [
        {
            "id": key(UNSUBSCRIBE_CAMPAIGN),
            "user_id": "u_456",
            "campaign_id": "4455667",
            "campaign_name": "Onboarding course",
            "unsubscribe_scope": "campaign",
            "timestamp": datetime(2026, 10, 7, 9, 12, 40, tzinfo=UTC),
        },
        {
            "id": key(UNSUBSCRIBE_ALL),
            "user_id": None,
            "campaign_id": None,
            "campaign_name": None,
            "unsubscribe_scope": "all",
            "timestamp": datetime(2026, 10, 8, 9, 0, 0, tzinfo=UTC),
        },
    ]
    raw = rows(engine, "SELECT origin FROM _raw_events")
    assert len(raw) == 7 and all(ORIGIN.match(r["origin"]) for r in raw)
    assert count(engine, "_pending") == 0


def test_a_json_array_body_lands_every_event_and_keeps_non_email_events_raw(
    serve: ServeProcess, engine: Engine
) -> None:
    events = [email_event("subscriber.opened_email", 10), APPLIED_TAG, CLICK]
    response = serve.post(json.dumps(events))
    assert (response.status_code, response.json()) == (200, {"received": 3})
    wait_until(lambda: count(engine, "tracks") == 2, within=FRESH_WITHIN)
    raw = rows(
        engine, "SELECT _event_key, event, is_email, origin FROM _raw_events ORDER BY origin"
    )
    assert [(r["_event_key"], r["event"], r["is_email"]) for r in raw] == [
        (key(events[0]), "subscriber.opened_email", True),
        (key(APPLIED_TAG), "subscriber.applied_tag", False),
        (key(CLICK), "subscriber.clicked_email", True),
    ]
    assert [r["origin"][-3:] for r in raw] == ["[0]", "[1]", "[2]"]
    assert {r["id"] for r in rows(engine, "SELECT id FROM tracks")} == {key(events[0]), key(CLICK)}
    assert serve.post("[]").json() == {"received": 0}


def test_a_retried_webhook_is_stored_once(serve: ServeProcess, engine: Engine) -> None:
    retry = json.loads(json.dumps(CLICK))
    retry["data"]["subscriber"]["tags"].append("retried")  # a changed snapshot: same event
    for attempt in (CLICK, CLICK, retry):
        assert serve.post(body(attempt)).status_code == 200
    wait_until(lambda: count(engine, "tracks") == 1, within=FRESH_WITHIN)
    assert count(engine, "_raw_events") == 1
    assert count(engine, "email_link_clicked") == 1
    assert metric(serve, 'drip_loader_webhook_events_total{outcome="landed"}') == 1
    assert metric(serve, 'drip_loader_webhook_events_total{outcome="duplicate"}') == 2


# -- bad requests -----------------------------------------------------------------------


def test_a_wrong_or_missing_token_is_404_stores_nothing_and_is_never_logged(
    db_url: str, tmp_path: Path, engine: Engine
) -> None:
    with ServeProcess(db_url, tmp_path / "serve.log", "--access-log") as server:
        server.wait_healthy()
        for path in (
            "/webhooks/drip/wrong-token-0123456789",
            f"/webhooks/drip/{TOKEN[:-1]}",
            f"/webhooks/drip/{TOKEN}x",
            "/webhooks/drip/",
            "/webhooks/drip",
        ):
            response = server.http.post(path, content=body(CLICK))
            assert (response.status_code, response.text) == (404, "Not Found"), path
        assert server.post(body(CLICK)).status_code == 200
        assert server.stop() == 0
    assert count(engine, "_raw_events") == 1  # only the one with the right token
    assert count(engine, "_rejects") == 0
    log = server.output()
    assert TOKEN not in log
    assert TOKEN[:-1] not in log
    assert re.search(r'127\.0\.0\.1 "POST /webhooks/drip/\*\*\*" 404 ', log)
    assert re.search(r'127\.0\.0\.1 "POST /webhooks/drip/\*\*\*" 200 ', log)


def test_an_oversize_body_is_413_and_its_head_is_kept_in_rejects(
    db_url: str, tmp_path: Path, engine: Engine
) -> None:
    with ServeProcess(db_url, tmp_path / "serve.log", "--max-body-bytes", "2000") as server:
        server.wait_healthy()
        big = dict(CLICK, padding="x" * 5000)
        raw = body(big)
        response = server.post(raw)
        assert response.status_code == 413
        assert response.json() == {
            "error": f"body is {len(raw)} bytes, over the limit of 2000 "
            "(raise serve --max-body-bytes to accept it)"
        }
        assert server.post(body(CLICK)).status_code == 200  # the connection still works
    assert count(engine, "_raw_events") == 1
    reject = rows(engine, "SELECT reason, origin, raw_text, raw_size FROM _rejects")
    assert len(reject) == 1
    assert reject[0]["raw_size"] == len(raw)
    assert reject[0]["raw_text"] == raw[:2000].decode()
    assert ORIGIN.match(reject[0]["origin"])


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON: invalid literal, expected 'null': line 1 column 1 (char 0)"),
        (b'"a string"', "not a JSON object (got a string)"),
        (b"", "not JSON: Input is a zero-length, empty document: line 1 column 1 (char 0)"),
        (
            b'{"event": 5, "occurred_at": "2026-10-06T15:52:58Z"}',
            "event must be a string, got a number",
        ),
        (b'{"event": "subscriber.opened_email"}', "occurred_at is missing"),
        (b'{"event": "x", "occurred_at": "\xff"}', "invalid UTF-8 at byte 31"),
        (b"[1,", "not JSON: unexpected end of data: line 1 column 4 (char 3)"),
    ],
)
def test_a_malformed_body_is_400_and_kept_in_rejects_with_its_origin(
    serve: ServeProcess, engine: Engine, raw: bytes, reason: str
) -> None:
    response = serve.post(raw)
    assert (response.status_code, response.json()) == (400, {"error": reason})
    reject = rows(engine, "SELECT reason, origin, raw_size FROM _rejects")
    assert [(r["reason"], r["raw_size"]) for r in reject] == [(reason, len(raw))]
    assert ORIGIN.match(reject[0]["origin"])
    assert count(engine, "_raw_events") == 0


def test_an_array_with_a_bad_element_is_400_and_keeps_the_good_ones(
    serve: ServeProcess, engine: Engine
) -> None:
    response = serve.post(json.dumps([CLICK, 7]))
    assert response.status_code == 400
    assert response.json() == {
        "error": "1 of 2 events rejected, first: [1] not a JSON object (got a number)"
    }
    assert [r["_event_key"] for r in rows(engine, "SELECT _event_key FROM _raw_events")] == [
        key(CLICK)
    ]
    assert [r["origin"][-3:] for r in rows(engine, "SELECT origin FROM _rejects")] == ["[1]"]


# -- operations -------------------------------------------------------------------------


def test_healthz_and_metrics(db_url: str, tmp_path: Path) -> None:
    # A long transform interval: the event stays pending long enough to see the lag.
    with ServeProcess(db_url, tmp_path / "serve.log", "--transform-interval", "30") as server:
        server.wait_healthy()
        assert server.http.get("/healthz").json() == {"status": "ok"}
        # Its first (empty) pass runs at start; the next one is 30 s away.
        wait_until(lambda: metric(server, "drip_loader_transform_runs_total") >= 1, within=10)
        assert server.post(body(CLICK)).status_code == 200
        assert server.post(b"nope").status_code == 400
        server.http.post("/webhooks/drip/wrong-token-0123456789", content=b"{}")
        time.sleep(0.2)
        text = server.http.get("/metrics").text
        assert server.http.get("/metrics").headers["content-type"] == (
            "text/plain; version=0.0.4; charset=utf-8"
        )
        assert "# TYPE drip_loader_webhook_requests_total counter" in text
        assert metric(server, 'drip_loader_webhook_requests_total{status="200"}') == 1
        assert metric(server, 'drip_loader_webhook_requests_total{status="400"}') == 1
        assert metric(server, 'drip_loader_webhook_requests_total{status="404"}') == 1
        assert metric(server, 'drip_loader_webhook_events_total{outcome="landed"}') == 1
        assert metric(server, 'drip_loader_webhook_events_total{outcome="rejected"}') == 1
        assert metric(server, "drip_loader_database_up") == 1
        assert metric(server, "drip_loader_pending_events") == 1
        assert 0.2 <= metric(server, "drip_loader_transform_lag_seconds") < 30
        assert server.stop() == 0  # stopping maps what is pending
    with ServeProcess(db_url, tmp_path / "serve2.log") as server:
        server.wait_healthy()
        assert metric(server, "drip_loader_pending_events") == 0
        assert metric(server, "drip_loader_transform_lag_seconds") == 0
        assert metric(server, "drip_loader_transformed_events_total") == 0


@pytest.fixture
def outage(
    stoppable: tuple[str, Any], tmp_path: Path
) -> Iterator[tuple[ServeProcess, Engine, Any]]:
    """serve on a database whose server the test may stop."""
    url, handle = stoppable
    engine = make_engine(url)
    with ServeProcess(url, tmp_path / "serve.log") as server:
        server.wait_healthy()
        yield server, engine, handle
    engine.dispose()


def test_database_down_answers_429_then_the_retried_events_land(
    outage: tuple[ServeProcess, Engine, Any],
) -> None:
    serve, engine, handle = outage
    first, second = (
        email_event("subscriber.opened_email", 21),
        email_event("subscriber.bounced", 22),
    )
    assert serve.post(body(first)).status_code == 200
    handle.pg_ctl("stop")
    try:
        refused = serve.post(body(second))
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "10"
        assert refused.json()["error"].startswith("not stored: ")
        assert serve.http.get("/healthz").status_code == 503
        assert serve.post(body(second)).status_code == 429  # still down: fails fast
    finally:
        handle.pg_ctl("start")
    # Drip retries; the receiver reconnects on its own.
    wait_until(lambda: serve.post(body(second)).status_code == 200, within=30)
    assert serve.http.get("/healthz").status_code == 200
    wait_until(lambda: count(engine, "tracks") == 2, within=FRESH_WITHIN * 2)
    assert {r["id"] for r in rows(engine, "SELECT id FROM tracks")} == {key(first), key(second)}
    assert metric(serve, 'drip_loader_webhook_requests_total{status="429"}') >= 2
    assert "answering 429 until it is back" in serve.output()
    assert "the database is back" in serve.output()


def test_serve_and_a_scheduled_load_side_by_side_double_nothing(
    serve: ServeProcess, engine: Engine, db_url: str, tmp_path: Path
) -> None:
    events = list(generate_events(events=3000, seed=5))
    file = tmp_path / "backfill.ndjson"
    file.write_bytes(b"\n".join(events[1000:]) + b"\n")  # overlaps the webhooks by 1000
    statuses: list[int] = []
    load_done = threading.Event()
    lock = threading.Lock()
    todo = iter(range(10**6))

    def post_until_load_is_done() -> None:
        # The 2000 webhooks, then retries of them (duplicates) for as long as load runs.
        for n in todo:
            if n >= 2000 and load_done.is_set():
                return
            status = serve.post(events[n % 2000]).status_code
            with lock:
                statuses.append(status)

    with ThreadPoolExecutor(8) as pool:
        posting = [pool.submit(post_until_load_is_done) for _ in range(8)]
        wait_until(lambda: len(statuses) >= 200, within=30)  # the load starts mid-stream
        load = subprocess.run(
            [str(BIN), "load", str(file), "--format", "json"],
            env={**os.environ, "DRIP_LOADER_DATABASE_URL": db_url},
            capture_output=True,
            timeout=120,
        )
        load_done.set()
        for future in posting:
            future.result(timeout=60)
    assert load.returncode == 0, load.stderr.decode()
    assert len(statuses) >= 2000
    assert set(statuses) == {200}
    report = json.loads(load.stdout)
    assert report["read"] == 2000 and report["rejected"] == 0
    records = [parse_record(raw) for raw in events]
    email_keys = {r.key for r in records if r.is_email}
    wait_until(lambda: count(engine, "_pending") == 0, within=FRESH_WITHIN * 2)
    assert count(engine, "_raw_events") == len({r.key for r in records})
    assert {r["id"] for r in rows(engine, "SELECT id FROM tracks")} == email_keys
    per_table = sum(count(engine, t) for t in COLLECTIONS)
    assert per_table == len(email_keys)


def test_sigterm_finishes_in_flight_requests_and_loses_nothing_answered_2xx(
    db_url: str, tmp_path: Path, engine: Engine
) -> None:
    server = ServeProcess(db_url, tmp_path / "serve.log")
    server.wait_healthy()
    events = list(generate_events(events=4000, seed=8))
    answered: list[bytes] = []
    lock = threading.Lock()
    todo = iter(events)

    def client() -> None:
        with httpx.Client(timeout=20) as http:
            for raw in todo:
                try:
                    status = http.post(server.webhook, content=raw).status_code
                except httpx.TransportError:
                    return  # the server stopped accepting
                if 200 <= status < 300:
                    with lock:
                        answered.append(raw)

    with ThreadPoolExecutor(8) as pool:
        running = [pool.submit(client) for _ in range(8)]
        wait_until(lambda: len(answered) >= 300, within=30)
        code = server.stop()
        for future in running:
            future.result(timeout=30)
    assert code == 0
    assert 300 <= len(answered) < len(events)
    records = [parse_record(raw) for raw in answered]
    # Right after exit, with no server running: landed and mapped, both.
    raw_keys = {r["_event_key"] for r in rows(engine, "SELECT _event_key FROM _raw_events")}
    assert {r.key for r in records} <= raw_keys
    tracks = {r["id"] for r in rows(engine, "SELECT id FROM tracks")}
    assert {r.key for r in records if r.is_email} <= tracks
    assert count(engine, "_pending") == 0
    run = rows(engine, "SELECT command, status, counts FROM _runs")
    assert [(r["command"], r["status"]) for r in run] == [("serve", "completed")]
    assert run[0]["counts"]["landed"] == len(raw_keys)
    assert "Stopped after" in server.output()


# -- the command line ---------------------------------------------------------------------


def test_serve_refuses_to_start_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIP_LOADER_WEBHOOK_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: DRIP_LOADER_WEBHOOK_TOKEN is not set: serve needs the secret that goes in the "
        "webhook URL you register in Drip; create one with: export DRIP_LOADER_WEBHOOK_TOKEN="
        "$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')\n"
    )


def test_serve_refuses_a_guessable_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIP_LOADER_WEBHOOK_TOKEN", "hunter2")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: DRIP_LOADER_WEBHOOK_TOKEN must be 16 to 256 URL-safe characters"
    )
    assert "hunter2" not in result.output


def test_serve_says_when_the_port_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIP_LOADER_WEBHOOK_TOKEN", TOKEN)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use; pick another --port "
        "or stop the process using it\n"
    )


def test_serve_help_lists_its_options() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--database-url",
        "--schema",
        "--max-body-bytes",
        "--no-migrate",
        "--transform-interval",
        "--writers",
        "--retry-after",
        "--forwarded-allow-ips",
        "--access-log",
    ):
        assert option in result.output


# -- the group-commit statement -----------------------------------------------------------


def test_the_group_commit_lands_each_event_once_and_keeps_rejects(engine: Engine) -> None:
    batch = RecordBatch()
    assert batch.add("webhook:a", body(CLICK), load_id="L") is None
    assert batch.add("webhook:b", body(CLICK), load_id="L") is None  # same event again
    assert batch.add("webhook:c", body(APPLIED_TAG), load_id="L") is None
    assert batch.add("webhook:d", b"[]", load_id="L") == "not a JSON object (got an array)"

    async def twice() -> tuple[Counts, Counts]:
        lander = GroupCommitLander(engine, schema="drip", load_id="L", writers=1)
        lander.start()
        try:
            await lander.submit(batch)
            first = replace(lander.stats, rows_added=Counter(lander.stats.rows_added))
            await lander.submit(batch)
        finally:
            await lander.stop()
        return first, lander.stats

    first, both = asyncio.run(twice())
    assert (first.read, first.landed, first.duplicates, first.rejected) == (4, 2, 1, 1)
    assert (first.not_email, both.landed - first.landed, both.duplicates - first.duplicates) == (
        1,
        0,
        3,
    )
    assert rows(engine, "SELECT _event_key, origin, payload FROM _raw_events ORDER BY origin") == [
        {"_event_key": key(CLICK), "origin": "webhook:a", "payload": CLICK},
        {"_event_key": key(APPLIED_TAG), "origin": "webhook:c", "payload": APPLIED_TAG},
    ]
    pending = [r["_event_key"] for r in rows(engine, "SELECT _event_key FROM _pending")]
    assert sorted(pending) == sorted([key(CLICK), key(APPLIED_TAG)])
    assert rows(engine, "SELECT reason, origin, raw_text FROM _rejects") == [  # once
        {"reason": "not a JSON object (got an array)", "origin": "webhook:d", "raw_text": "[]"}
    ]


def test_serve_emit_forwards_received_events_to_segment(db_url: str, tmp_path: Path) -> None:
    from tests.support.segment_sink import SegmentSink

    bodies = list(generate_events(events=60, seed=21))
    email_ids = {parse_record(b).key for b in bodies if parse_record(b).is_email}
    with SegmentSink(write_key="wk-serve-emit-0123") as sink:
        args = ("--emit", "--segment-write-key", "wk-serve-emit-0123", "--segment-host", sink.url)
        with ServeProcess(db_url, tmp_path / "serve.log", *args) as server:
            server.wait_healthy()
            for body in bodies:
                assert server.post(body).status_code == 200
            wait_until(lambda: set(sink.message_ids()) == email_ids, within=20)
            assert server.stop() == 0
            assert "wk-serve-emit-0123" not in server.output()
    assert sorted(sink.message_ids()) == sorted(email_ids)  # each once
