"""Security: hostile input stays data, secrets stay secret, slow clients cannot hold the receiver."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from tests.casefiles import case, line
from tests.support.serve import TOKEN, ServeProcess

INJECTION = "x'); DROP TABLE drip.tracks; --"


def test_sql_in_payload_fields_is_stored_as_text(
    db_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    body = case("email_link_clicked")
    body["data"]["properties"]["url"] = INJECTION
    body["data"]["subscriber"]["email"] = INJECTION
    body["event"] = "subscriber.clicked_email"
    with ServeProcess(db_url, tmp_path / "serve.log") as server:
        server.wait_healthy()
        assert server.post(line(body)).status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                found = conn.execute(
                    sa.text("SELECT link_url, anonymous_id FROM drip.email_link_clicked")
                ).all()
            if found:
                break
            time.sleep(0.1)
    assert [tuple(r) for r in found] == [(INJECTION, INJECTION)]


def test_deep_nesting_is_refused_by_the_receiver(db_url: str, tmp_path: Path) -> None:
    deep = (
        b'{"event": "subscriber.created", "occurred_at": "2026-10-06T15:50:02Z", "data": '
        + b"[" * 500
        + b"]" * 500
        + b"}"
    )
    with ServeProcess(db_url, tmp_path / "serve.log") as server:
        server.wait_healthy()
        answer = server.post(deep)
    assert answer.status_code == 400
    assert "nested deeper than 64 levels" in answer.json()["error"]


def test_a_client_trickling_its_body_gets_408_and_does_not_hold_the_server(
    db_url: str, tmp_path: Path
) -> None:
    with ServeProcess(db_url, tmp_path / "serve.log", "--body-timeout", "1") as server:
        server.wait_healthy()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
            slow.sendall(
                f"POST /webhooks/drip/{TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: 500\r\n\r\n{".encode()
            )
            started = time.monotonic()
            answer = slow.recv(4096).decode()
            waited = time.monotonic() - started
        assert answer.startswith("HTTP/1.1 408"), answer
        assert 0.5 < waited < 5
        # meanwhile the receiver kept answering others
        assert server.post(line(case("email_opened"))).status_code == 200


def test_a_client_hanging_up_mid_body_stores_nothing_and_the_receiver_goes_on(
    db_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    with ServeProcess(db_url, tmp_path / "serve.log") as server:
        server.wait_healthy()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as gone:
            gone.sendall(
                f"POST /webhooks/drip/{TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: 500\r\n\r\n".encode()
                + line(case("email_opened"))[:40]
            )
        time.sleep(0.5)
        assert server.post(line(case("email_link_clicked"))).status_code == 200
        assert "Traceback" not in server.log.read_text()
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT event FROM drip._raw_events UNION ALL SELECT reason FROM drip._rejects")
        ).scalars()
        assert list(stored) == ["subscriber.clicked_email"]


def test_the_database_password_never_appears_in_any_output(tmp_path: Path) -> None:
    secret = "pw-Zq93-never-print"
    url = f"postgresql://loader:{secret}@127.0.0.1:1/warehouse"
    env = {**os.environ, "DRIP_LOADER_DATABASE_URL": url, "DRIP_LOADER_WEBHOOK_TOKEN": TOKEN}
    sample = tmp_path / "s.ndjson"
    sample.write_bytes(line(case("email_opened")) + b"\n")
    runs = [
        ["load", str(sample)],
        ["status"],
        ["migrate"],
        ["sql", "select 1"],
        ["emit", "--segment-write-key", "wk-abcdef0123456789"],
        ["--debug", "status"],
    ]
    for args in runs:
        result = subprocess.run(
            [sys.executable, "-m", "loader", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0, args
        assert secret not in result.stdout + result.stderr, args
        assert "wk-abcdef0123456789" not in result.stdout + result.stderr, args
