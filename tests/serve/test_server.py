"""Hosting ``serve`` through the database's bad days: a restart, a wrong password, a
missing database or privilege (a real server, a real process)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from loader.warehouse.db import make_engine
from loader.warehouse.status import warehouse_status
from tests.conftest import Login
from tests.serve.test_app import body, email_event, wait_until
from tests.support.serve import BIN, TOKEN, ServeProcess

_RUN = re.compile(r"\(token from \$DRIP_LOADER_WEBHOOK_TOKEN; run ([0-9a-f]{32})\)")


def _run_status(engine: sa.Engine, load_id: str) -> str:
    runs = warehouse_status(engine, schema="drip").last_runs
    return next(r.status for r in runs if r.load_id == load_id)


def test_a_database_restart_under_serve_keeps_its_run_and_counts(
    stoppable: tuple[str, Any], tmp_path: Path
) -> None:
    url, handle = stoppable
    engine = make_engine(url)
    try:
        with ServeProcess(url, tmp_path / "serve.log") as serve:
            serve.wait_healthy()
            found = _RUN.search(serve.output())
            assert found, serve.output()
            load_id = found.group(1)
            assert serve.post(body(email_event("subscriber.opened_email", 41))).status_code == 200
            handle.pg_ctl("stop")
            try:
                down = serve.http.get("/healthz")
                # no host, port, user or advice in the body: the detail is in serve's log
                assert (down.status_code, down.json()) == (
                    503,
                    {"status": "unavailable", "reason": "database unavailable"},
                )
            finally:
                handle.pg_ctl("start")
            later = body(email_event("subscriber.bounced", 42))
            wait_until(lambda: serve.post(later).status_code == 200, within=30)
            # the ledger holds its lock again: the run is alive, not "process gone"
            wait_until(lambda: _run_status(engine, load_id) == "running", within=15)
            serve.http.close()
            serve.proc.send_signal(signal.SIGINT)
            assert serve.proc.wait(60) == 0, serve.output()
        assert "could not record" not in serve.output()
        with engine.connect() as conn:
            run = conn.execute(
                sa.text("SELECT status, counts, error FROM drip._runs WHERE load_id = :id"),
                {"id": load_id},
            ).one()
        assert (run.status, run.error) == ("completed", None)
        assert (run.counts["landed"], run.counts["read"]) == (2, 2)
        assert run.counts["responses"]["200"] == 2
    finally:
        engine.dispose()


def _refusal(login: Login, case: str) -> tuple[str, str]:
    """The URL that makes the database refuse serve for ``case``, and serve's error line."""
    url = sa.engine.make_url(login.url)
    with login.admin.connect() as conn:
        if case in ("no CONNECT privilege", "no privilege on the schema"):
            conn.execute(sa.text(f"ALTER ROLE {login.role} NOSUPERUSER"))
        if case == "no CONNECT privilege":
            conn.execute(sa.text(f'REVOKE CONNECT ON DATABASE "{login.database}" FROM PUBLIC'))
    if case == "wrong password":
        return (
            url.set(password="not-the-password-0123").render_as_string(hide_password=False),
            f'Error: the database refused the login: password authentication failed for user "'
            f'{login.role}"; check the user name and password of the database URL',
        )
    if case == "no such database":
        return (
            url.set(database="no_such_database").render_as_string(hide_password=False),
            'Error: the database refused the login: database "no_such_database" does not '
            "exist; create it, or fix the database name of the URL",
        )
    if case == "no CONNECT privilege":
        return (
            login.url,
            f'Error: the database refused the login: permission denied for database "'
            f'{login.database}"; grant the role CONNECT on that database, or use another role',
        )
    return (
        login.url,
        "Error: the database refused a statement: permission denied for schema drip; grant "
        "the loader's role the privileges it needs on the schema, or use the role that owns it",
    )


@pytest.mark.parametrize(
    "case",
    [
        "wrong password",
        "no such database",
        "no CONNECT privilege",
        "no privilege on the schema",
    ],
)
def test_serve_refuses_to_start_when_the_database_refuses_it(login: Login, case: str) -> None:
    url, line = _refusal(login, case)
    env = {**os.environ, "DRIP_LOADER_DATABASE_URL": url, "DRIP_LOADER_WEBHOOK_TOKEN": TOKEN}
    try:
        serve = subprocess.run(
            [str(BIN), "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired as running:
        raise AssertionError(f"serve kept running:\n{running.stderr!r}") from None
    assert (serve.returncode, serve.stderr, serve.stdout) == (1, line + "\n", "")
    assert login.password not in serve.stderr


def test_a_password_changed_under_serve_makes_healthz_say_why(login: Login, tmp_path: Path) -> None:
    with ServeProcess(login.url, tmp_path / "serve.log") as serve:
        serve.wait_healthy()
        with login.admin.connect() as conn:
            conn.execute(sa.text(f"ALTER ROLE {login.role} PASSWORD 'rotated-0123456789'"))
            # the sessions end (a restart, a pooler recycling them): new ones must log in
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"
                ),
                {"r": login.role},
            )
        wait_until(lambda: serve.http.get("/healthz").status_code == 503, within=20)
        for _ in range(3):
            health = serve.http.get("/healthz")
            assert health.headers["content-type"] == "application/json", serve.output()
            assert (health.status_code, health.json()) == (
                503,
                {"status": "unavailable", "reason": "authentication failed"},
            )
        assert serve.post(body(email_event("subscriber.opened_email", 51))).status_code == 429
        # the detail is in the log, once for the change of state, not once per probe
        said = [line for line in serve.output().splitlines() if "/healthz: unavailable" in line]
        assert len(said) == 1, serve.output()
        assert f'password authentication failed for user "{login.role}"' in said[0]

        with login.admin.connect() as conn:
            conn.execute(sa.text(f"ALTER ROLE {login.role} PASSWORD :pw"), {"pw": login.password})
        wait_until(lambda: serve.http.get("/healthz").status_code == 200, within=20)
        assert "/healthz: ok again" in serve.output()
        wait_until(
            lambda: serve.post(body(email_event("subscriber.opened_email", 51))).status_code == 200,
            within=20,
        )
        assert login.password not in serve.output()
