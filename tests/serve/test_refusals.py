"""One log line per refused webhook on serve's stderr, rate-limited."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from loader.serve.refusals import RefusalLog, drip_event
from tests.casefiles import case_bytes
from tests.support.serve import TOKEN, ServeProcess

CLICK = case_bytes("email_link_clicked")
SCOPE = {"client": ("198.51.100.7", 5555), "method": "POST", "path": f"/webhooks/drip/{TOKEN}"}


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "loader.serve.refused"]


def test_at_most_n_lines_a_second_then_one_summary(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="loader.serve.refused")
    now = [100.0]

    async def flood() -> None:
        log = RefusalLog(per_second=3, clock=lambda: now[0])
        for _ in range(10):
            log.refused(SCOPE, status=400, reason="not JSON", size=8, body=b"not json")
        assert len(lines(caplog)) == 3
        await asyncio.sleep(1.05)  # the window ends: its summary is written on its own
        now[0] += 1.0
        log.refused(SCOPE, status=413, reason="too big", size=10**7, body=CLICK[:80])

    asyncio.run(flood())
    not_json = (
        "refused webhook 400 from 198.51.100.7 (POST /webhooks/drip/***, 8 bytes, event unknown): "
        "not JSON"
    )
    assert lines(caplog) == [
        not_json,
        not_json,
        not_json,
        "suppressed 7 more lines about refused webhooks in the last second (at most 3 a second "
        "are written; /metrics counts them all)",
        "refused webhook 413 from 198.51.100.7 (POST /webhooks/drip/***, 10,000,000 bytes, event "
        "subscriber.clicked_email): too big",
    ]


@pytest.mark.parametrize(
    ("body", "reason", "event"),
    [
        (CLICK, "x", "subscriber.clicked_email"),
        (
            b"[" + CLICK + b', {"event": "subscriber.bounced"}]',
            "1 of 2 events rejected, first: [1] occurred_at is missing",
            "subscriber.bounced",
        ),
        (CLICK[:60], "body is too large", "subscriber.clicked_email"),
        (b'{"event": "sub\\nscriber.x\\u001b[31m"}', "x", "'sub\\nscriber.x\\x1b[31m'"),
        (b'{"event": 5}', "event must be a string", None),
        (b"", "not JSON", None),
        (None, "timed out", None),
    ],
)
def test_the_event_of_a_refused_body(body: bytes | None, reason: str, event: str | None) -> None:
    assert drip_event(body, reason) == event


def test_serve_logs_each_refused_webhook_with_its_reason_and_never_the_token(
    db_url: str, tmp_path: Path
) -> None:
    with ServeProcess(db_url, tmp_path / "serve.log", "--max-body-bytes", "2000") as server:
        server.wait_healthy()
        bad = b'{"event": "subscriber.opened_email", "data": {}}'
        assert server.post(bad).status_code == 400
        big = json.dumps({"event": "subscriber.bounced", "pad": "x" * 5000}).encode()
        assert server.post(big).status_code == 413
        assert server.post(b"[" + CLICK + b", 7]").status_code == 400
        assert server.post(CLICK).status_code == 200
        assert server.stop() == 0
    log = server.output()
    assert TOKEN not in log
    refused = [line for line in log.splitlines() if "refused webhook" in line]
    assert refused == [
        "WARNING:  refused webhook 400 from 127.0.0.1 (POST /webhooks/drip/***, 48 bytes, event "
        "subscriber.opened_email): occurred_at is missing",
        f"WARNING:  refused webhook 413 from 127.0.0.1 (POST /webhooks/drip/***, {len(big):,} "
        f"bytes, event subscriber.bounced): body is {len(big)} bytes, over the limit of 2000 "
        "(raise serve --max-body-bytes to accept it)",
        f"WARNING:  refused webhook 400 from 127.0.0.1 (POST /webhooks/drip/***, "
        f"{len(CLICK) + 5:,} bytes, event unknown): 1 of 2 events rejected, first: [1] not a "
        "JSON object (got a number)",
    ]


def test_a_flood_of_refused_webhooks_writes_a_bounded_log(db_url: str, tmp_path: Path) -> None:
    with ServeProcess(db_url, tmp_path / "serve.log") as server:
        server.wait_healthy()
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: server.post(b"nope").status_code, range(400)))
        assert set(statuses) == {400}
        assert server.stop() == 0
    log = server.output()
    refused = len(re.findall(r"refused webhook 400 ", log))
    suppressed = sum(int(n.replace(",", "")) for n in re.findall(r"suppressed ([\d,]+) more", log))
    assert refused + suppressed == 400
    assert suppressed > 0
    seconds = len(re.findall(r"suppressed [\d,]+ more", log))
    assert refused <= 10 * (seconds + 1)  # at most 10 lines in each second that had a summary


def test_a_body_that_does_not_arrive_in_time_is_logged_as_408(db_url: str, tmp_path: Path) -> None:
    with ServeProcess(db_url, tmp_path / "serve.log", "--body-timeout", "0.5") as server:
        server.wait_healthy()
        with socket.create_connection(("127.0.0.1", server.port)) as slow:
            slow.sendall(
                f"POST /webhooks/drip/{TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                '{"event": '.encode()
            )
            answer = slow.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert server.stop() == 0
    log = server.output()
    assert TOKEN not in log
    assert (
        "WARNING:  refused webhook 408 from 127.0.0.1 (POST /webhooks/drip/***, 10 bytes, event "
        "unknown): body not received within 0.5 s (10 of 100 bytes)"
    ) in log
