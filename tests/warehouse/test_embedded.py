"""The embedded default: with no database URL at all, the loader brings its own PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from loader.config import default_home


def _run(home: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DRIP_LOADER_") and k != "DATABASE_URL"
    }
    env["DRIP_LOADER_HOME"] = str(home)
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
