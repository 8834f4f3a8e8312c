"""The /debugger routes of ``drip-loader serve``, over plain HTTP: access, assets, feeds."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from loader.cli.app import app
from tests.casefiles import case, case_bytes
from tests.support.serve import BIN, TOKEN, ServeProcess

ADMIN = "admin-Token_0123456789"
ADMIN_ENV = {"DRIP_LOADER_ADMIN_TOKEN": ADMIN}
CLICK = case_bytes("email_link_clicked")  # john@acme.com
TAG = case_bytes("applied_tag")
OPEN = json.dumps(
    {
        "event": "subscriber.opened_email",
        "data": {
            "account_id": "9999999",
            "subscriber": {
                "id": "sub1",
                "email": "maria.garcia@example.org",
                "first_name": "Maria",
            },
            "properties": {"delivery_id": "1", "email_id": "2", "email_subject": "Hi"},
        },
        "occurred_at": "2026-10-06T15:50:02Z",
    }
).encode()
NO_TIME = (
    b'{"event": "subscriber.bounced", "data": {"subscriber": {"email": "kim.lee@example.net"}}}'
)
STATIC = resources.files("loader.serve.debugger").joinpath("static")
ASSETS = {
    "/debugger": ("index.html", "text/html; charset=utf-8"),
    "/debugger/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/debugger/style.css": ("style.css", "text/css; charset=utf-8"),
}


@pytest.fixture
def serve(db_url: str, tmp_path: Path) -> Iterator[ServeProcess]:
    with ServeProcess(db_url, tmp_path / "serve.log", env=ADMIN_ENV) as server:
        server.wait_healthy()
        server.http.auth = httpx.BasicAuth("anyone", ADMIN)
        yield server


def feed(server: ServeProcess, path: str) -> Any:
    answer = server.http.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return answer.json()


def requests_after(server: ServeProcess, after: int = 0) -> dict[str, Any]:
    return feed(server, f"/debugger/api/requests?after={after}")  # type: ignore[no-any-return]


def wait_for(check: Any, within: float = 10) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within} s")
        time.sleep(0.1)


# -- access ----------------------------------------------------------------------------


def test_without_an_admin_token_the_debugger_routes_are_404(db_url: str, tmp_path: Path) -> None:
    with ServeProcess(db_url, tmp_path / "serve.log") as server:
        server.wait_healthy()
        auth = httpx.BasicAuth("admin", ADMIN)
        for path in [*ASSETS, "/debugger/api/requests", "/debugger/api/warehouse"]:
            answer = server.http.get(path, auth=auth)
            assert (answer.status_code, answer.text) == (404, "Not Found"), path


def test_the_debugger_asks_for_the_admin_token_as_a_basic_auth_password(
    serve: ServeProcess,
) -> None:
    anonymous = httpx.Client(base_url=serve.base, timeout=10)
    for path in [*ASSETS, "/debugger/api/requests", "/debugger/api/warehouse"]:
        answer = anonymous.get(path)
        assert answer.status_code == 401, path
        assert answer.headers["www-authenticate"] == (
            'Basic realm="drip-loader debugger", charset="UTF-8"'
        )
        assert "admin token" in answer.text
    wrong = [
        {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN}x".encode()).decode()},
        {"Authorization": "Basic " + base64.b64encode(f"admin:{TOKEN}".encode()).decode()},
        {"Authorization": "Basic " + base64.b64encode(ADMIN.encode()).decode()},  # no colon
        {"Authorization": f"Bearer {ADMIN}"},
        {"Authorization": "Basic %%%"},
    ]
    for headers in wrong:
        assert anonymous.get("/debugger", headers=headers).status_code == 401, headers
    for user in ("admin", "", "jane"):
        assert anonymous.get("/debugger", auth=(user, ADMIN)).status_code == 200, user
    anonymous.close()
    assert ADMIN not in serve.output()


def test_a_short_admin_token_is_refused_at_start_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRIP_LOADER_WEBHOOK_TOKEN", TOKEN)
    monkeypatch.setenv("DRIP_LOADER_ADMIN_TOKEN", "short-secret")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: the admin token (--admin-token or DRIP_LOADER_ADMIN_TOKEN) must be at least 16 "
        "characters; create one with: export DRIP_LOADER_ADMIN_TOKEN=$(python3 -c 'import "
        "secrets; print(secrets.token_urlsafe(24))')\n"
    )
    monkeypatch.setenv("DRIP_LOADER_ADMIN_TOKEN", TOKEN)
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: the admin token must not be the webhook token (DRIP_LOADER_WEBHOOK_TOKEN); "
    )
    assert TOKEN not in result.output


def test_serve_options_turn_the_debugger_on_and_show_pii(db_url: str, tmp_path: Path) -> None:
    args = ("--admin-token", ADMIN, "--debugger-show-pii")
    with ServeProcess(db_url, tmp_path / "serve.log", *args) as server:
        server.wait_healthy()
        assert server.http.get("/debugger").status_code == 401
        server.http.auth = httpx.BasicAuth("admin", ADMIN)
        assert server.post(OPEN).status_code == 200
        [row] = requests_after(server)["rows"]
        assert row["email"] == "maria.garcia@example.org"
        assert server.stop() == 0
    assert ADMIN not in server.output()


def test_serve_help_names_the_debugger_options_and_their_variables() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for text in (
        "--admin-token",
        "$DRIP_LOADER_ADMIN_TOKEN",
        "--debugger-show-pii",
        "$DRIP_LOADER_DEBUGGER_SHOW_PII=1",
    ):
        assert text in result.output


def test_a_short_admin_token_option_is_refused_and_not_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRIP_LOADER_WEBHOOK_TOKEN", TOKEN)
    monkeypatch.delenv("DRIP_LOADER_ADMIN_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["serve", "--admin-token", "hunter2-hunter"])
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: the admin token (--admin-token or DRIP_LOADER_ADMIN_TOKEN) must be at least 16 "
        "characters; "
    )
    assert result.output.count("\n") == 1
    assert "hunter2" not in result.output


# -- the page --------------------------------------------------------------------------


def test_the_page_and_its_assets_are_served_from_the_package(serve: ServeProcess) -> None:
    for path, (name, kind) in ASSETS.items():
        answer = serve.http.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"] == kind
        assert answer.content == STATIC.joinpath(name).read_bytes()
        assert b"://" not in answer.content  # nothing from elsewhere: works offline
    page = serve.http.get("/debugger")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert '<script src="/debugger/app.js" defer></script>' in page.text
    assert '<link rel="stylesheet" href="/debugger/style.css">' in page.text


# -- the live stream -------------------------------------------------------------------


def test_each_webhook_is_in_the_feed_with_its_outcome_event_collection_and_masked_email(
    serve: ServeProcess,
) -> None:
    assert requests_after(serve)["rows"] == []
    assert serve.post(CLICK).status_code == 200
    assert serve.post(CLICK).status_code == 200  # Drip's retry
    assert serve.post(TAG).status_code == 200
    assert serve.post(NO_TIME).status_code == 400
    assert serve.post(b"[" + OPEN + b", 7]").status_code == 400
    wrong = serve.http.post("/webhooks/drip/an-old-token-0123456789", content=CLICK)
    assert wrong.status_code == 404
    got = requests_after(serve)
    shown = [
        (r["seq"], r["index"], r["outcome"], r["event"], r["collection"], r["email"], r["status"])
        for r in got["rows"]
    ]
    click = ("subscriber.clicked_email", "email_link_clicked", "j***@acme.com")
    assert shown == [
        (1, None, "landed", *click, 200),
        (2, None, "duplicate", *click, 200),
        (3, None, "landed", "subscriber.applied_tag", "kept raw", "j***@acme.com", 200),
        (4, None, "rejected", "subscriber.bounced", None, "k***@example.net", 400),
        (5, 0, "landed", "subscriber.opened_email", "email_opened", "m***@example.org", 400),
        (5, 1, "rejected", None, None, None, 400),
        (6, None, "wrong token", None, None, None, 404),
    ]
    rows = got["rows"]
    assert rows[3]["reason"] == "occurred_at is missing"
    assert rows[5]["reason"] == "not a JSON object (got a number)"
    assert rows[1]["reason"].startswith("stored first by webhook:127.0.0.1:")
    assert json.loads(rows[0]["body"])["data"]["subscriber"]["email"] == "j***@acme.com"
    assert json.loads(rows[4]["body"])["data"]["subscriber"]["first_name"] == "***"
    assert (got["last"], got["show_pii"], got["capacity"]) == (6, False, 500)
    everything = json.dumps(got)
    for secret in ("john@acme.com", "maria.garcia", "kim.lee", "Maria", "203.0.113.7"):
        assert secret not in everything
    # The page asks for what came after the last it has.
    assert requests_after(serve, 6)["rows"] == []
    assert serve.post(OPEN).status_code == 200
    [row] = requests_after(serve, 6)["rows"]
    assert (row["seq"], row["outcome"]) == (7, "duplicate")


def test_show_pii_shows_emails_and_bodies_as_received(db_url: str, tmp_path: Path) -> None:
    env = {**ADMIN_ENV, "DRIP_LOADER_DEBUGGER_SHOW_PII": "1"}
    with ServeProcess(db_url, tmp_path / "serve.log", env=env) as server:
        server.wait_healthy()
        server.http.auth = httpx.BasicAuth("admin", ADMIN)
        assert server.post(OPEN).status_code == 200
        assert server.post(NO_TIME).status_code == 400
        got = requests_after(server)
        assert [r["email"] for r in got["rows"]] == [
            "maria.garcia@example.org",
            "kim.lee@example.net",
        ]
        assert json.loads(got["rows"][0]["body"]) == json.loads(OPEN)
        assert got["show_pii"] is True
        rejects = wait_for(lambda: feed(server, "/debugger/api/warehouse")["rejects"])
        assert rejects[0]["email"] == "kim.lee@example.net"


def test_the_webhook_token_never_reaches_the_page(serve: ServeProcess) -> None:
    leaky = case("email_link_clicked")
    leaky["data"]["properties"]["url"] = f"https://example.com/webhooks/drip/{TOKEN}"
    assert serve.post(json.dumps(leaky)).status_code == 200
    assert serve.post(f'{{"note": "{TOKEN}"}}').status_code == 400
    assert serve.http.post(f"/webhooks/drip/{TOKEN}x", content=CLICK).status_code == 404

    def warehouse() -> str | None:
        text = serve.http.get("/debugger/api/warehouse").text
        return text if "note" in text else None  # the reject is there

    seen = [serve.http.get(path).text for path in ASSETS] + [
        serve.http.get("/debugger/api/requests?after=0").text,
        wait_for(warehouse),
    ]
    assert "/webhooks/drip/***" in seen[3]
    for text in seen:
        assert TOKEN not in text


# -- from the warehouse ----------------------------------------------------------------


def test_rejects_and_counts_come_from_the_warehouse_from_every_process_and_after_a_restart(
    db_url: str, tmp_path: Path
) -> None:
    with ServeProcess(db_url, tmp_path / "first.log", env=ADMIN_ENV) as first:
        first.wait_healthy()
        assert first.post(NO_TIME).status_code == 400
        assert first.post(CLICK).status_code == 200
        assert first.post(OPEN).status_code == 200
        assert first.post(b"not json").status_code == 400
        assert first.stop() == 0
    backfill = tmp_path / "backfill.ndjson"
    backfill.write_bytes(TAG + b"\n" + b'{"event": "subscriber.opened_email"}\n')
    load = subprocess.run(
        [str(BIN), "load", str(backfill)],
        env={**os.environ, "DRIP_LOADER_DATABASE_URL": db_url},
        capture_output=True,
    )
    assert load.returncode == 0, load.stderr
    with ServeProcess(db_url, tmp_path / "second.log", env=ADMIN_ENV) as second:
        second.wait_healthy()
        second.http.auth = httpx.BasicAuth("admin", ADMIN)
        facts = feed(second, "/debugger/api/warehouse")
        assert [(r["reason"], r["origin"].split(":")[0]) for r in facts["rejects"]] == [
            ("occurred_at is missing", str(backfill)),
            ("not JSON: invalid literal, expected 'null': line 1 column 1 (char 0)", "webhook"),
            ("occurred_at is missing", "webhook"),
        ]
        assert facts["rejects"][2]["email"] == "k***@example.net"
        assert {c["collection"]: c["events"] for c in facts["last_hour"]} == {
            "email_delivered": 0,
            "email_opened": 1,
            "email_link_clicked": 1,
            "email_bounced": 0,
            "email_marked_as_spam": 0,
            "email_unsubscribed": 0,
        }
        assert requests_after(second)["rows"] == []  # each process shows its own stream
        assert (facts["status"], facts["detail"], facts["pending"]) == ("ok", None, 0)
        assert [w["name"] for w in facts["workers"]] == ["transform"]
        assert facts["workers"][0]["alive"] is True
        assert facts["process"]["landed"] == 0


def test_health_facts_are_those_of_healthz_and_metrics(db_url: str, tmp_path: Path) -> None:
    with ServeProcess(
        db_url, tmp_path / "serve.log", "--transform-interval", "30", env=ADMIN_ENV
    ) as server:
        server.wait_healthy()
        server.http.auth = httpx.BasicAuth("admin", ADMIN)
        # Its first (empty) pass runs at start; the next one is 30 s away.
        wait_for(lambda: feed(server, "/debugger/api/warehouse")["workers"][0]["runs"] >= 1)
        assert server.post(CLICK).status_code == 200
        assert server.post(TAG).status_code == 200
        assert server.post(b"nope").status_code == 400
        facts = feed(server, "/debugger/api/warehouse")
        metrics = server.http.get("/metrics").text
        assert f"drip_loader_pending_events {facts['pending']}" in metrics
        assert facts["pending"] == 2
        assert facts["lag_seconds"] > 0
        assert facts["process"] == {
            "seconds": facts["process"]["seconds"],
            "responses": {"200": 2, "400": 1},
            "landed": 2,
            "duplicates": 0,
            "rejected": 1,
            "kept_raw": 1,
            "transformed": 0,
        }
        assert server.http.get("/healthz").json() == {"status": facts["status"]}


def test_the_wheel_holds_the_page_and_its_queries(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(root)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr
    [wheel] = tmp_path.glob("drip_loader-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("index.html", "app.js", "style.css"):
        assert f"loader/serve/debugger/static/{name}" in names
    for name in ("debugger_origins", "debugger_rejects", "debugger_last_hour"):
        assert f"loader/_sql/serve/{name}.sql" in names
