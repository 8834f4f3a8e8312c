"""deploy/systemd: the units pass systemd's own checks, every command line in them is a real
drip-loader command with valid options, and each unit does its job when run as systemd runs
it (serve inside the sandbox of its hardening options)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import typer.main
from sqlalchemy.engine import Engine

from loader.cli.app import app
from loader.domain.sample import generate_events
from loader.pipeline.extract import RawRecord
from loader.warehouse.db import make_engine
from tests.casefiles import case_bytes
from tests.deploy.units import (
    BIN,
    INSTALLED_BIN,
    REPO,
    UNITS,
    Unit,
    argv,
    render,
    run_oneshot,
    sandboxed,
    service_environment,
    shipped,
    shipped_unit,
)
from tests.support.fake_drip import TOKEN as DRIP_TOKEN
from tests.support.fake_drip import FakeDrip
from tests.support.serve import TOKEN
from tests.support.warehouse import one, queue_records, write_ndjson

SERVICES = {
    "drip-loader-serve.service",
    "drip-loader-load.service",
    "drip-loader-import.service",
    "drip-loader-sync.service",
    "drip-loader-prune.service",
}
TIMERS = {"drip-loader-load.timer", "drip-loader-import.timer", "drip-loader-sync.timer"}
TIMERS |= {"drip-loader-prune.timer"}
LISTENING = re.compile(r"http://127\.0\.0\.1:(\d+)/webhooks/drip/<token>")


def _env_file(tmp_path: Path, db_url: str, name: str = "drip-loader.env", **more: str) -> Path:
    path = tmp_path / name
    values = {"DRIP_LOADER_DATABASE_URL": db_url, "DRIP_LOADER_WEBHOOK_TOKEN": TOKEN, **more}
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)
    return path


def _rendered(name: str, tmp_path: Path, env_file: Path, port: int | None = None) -> Unit:
    return render(shipped_unit(name), root=tmp_path, env_file=env_file, port=port)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url, null_pool=True)
    yield eng
    eng.dispose()


def test_the_shipped_units_are_these() -> None:
    assert {u.name for u in shipped()} == SERVICES | TIMERS
    # every timer starts the service of its name, and every service but serve has a timer
    assert {u.name.replace(".timer", ".service") for u in shipped() if u.name in TIMERS} == (
        SERVICES - {"drip-loader-serve.service"}
    )


def test_systemd_analyze_verify_finds_nothing_to_say(tmp_path: Path) -> None:
    # verify also checks that each ExecStart binary exists: the units point at this venv
    env_file = tmp_path / "env"
    env_file.write_text("")
    rendered = tmp_path / "units"
    rendered.mkdir()
    for unit in shipped():
        (rendered / unit.name).write_text(render(unit, root=tmp_path, env_file=env_file).text)
    done = subprocess.run(
        ["systemd-analyze", "verify", *sorted(p.name for p in rendered.iterdir())],
        cwd=rendered,
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
    for unit in shipped():
        for calendar in unit.values("Timer", "OnCalendar"):
            checked = subprocess.run(
                ["systemd-analyze", "calendar", calendar], capture_output=True, text=True
            )
            assert checked.returncode == 0, checked.stderr


def _parse(args: list[str]) -> None:
    """Parse ``drip-loader args`` as the CLI does, without running it: the command is
    resolved and every option converted and range-checked (a wrong name or value raises)."""
    command: Any = typer.main.get_command(app)
    name, rest = "drip-loader", list(args)
    parent: typer.Context | None = None
    while hasattr(command, "resolve_command"):  # a group: resolve its subcommand
        parent = typer.Context(command, info_name=name, parent=parent)
        name, command, rest = command.resolve_command(parent, rest)
    command.make_context(name, rest, parent=parent)


def test_the_parser_of_this_test_refuses_what_the_cli_refuses() -> None:
    with pytest.raises(typer.TyperException):
        _parse(["serve", "--port", "eighty"])
    with pytest.raises(typer.TyperException):
        _parse(["load", "--no-migrat"])
    with pytest.raises(typer.TyperException):
        _parse(["drip", "sink"])


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_exec_line_of_drip_loader_is_a_real_command_with_valid_options(name: str) -> None:
    unit = shipped_unit(name)
    lines = [
        argv(v)
        for key in ("ExecCondition", "ExecStartPre", "ExecStart", "ExecStartPost")
        for v in unit.values("Service", key)
    ]
    commands = [words[1:] for words in lines if words[0] == INSTALLED_BIN]
    assert commands, f"{name} runs no drip-loader command"
    for args in commands:
        _parse(args)
        words = args[: next((i for i, a in enumerate(args) if a.startswith("-")), len(args))]
        help_text = subprocess.run([str(BIN), *words, "--help"], capture_output=True)
        assert help_text.returncode == 0, help_text.stderr


def test_the_environment_file_names_variables_the_code_reads() -> None:
    names = re.findall(
        r"^#?([A-Z][A-Z0-9_]+)=", (UNITS / "drip-loader.env.example").read_text(), re.M
    )
    assert {"DRIP_LOADER_DATABASE_URL", "DRIP_LOADER_WEBHOOK_TOKEN"} <= set(names)
    code = "\n".join(p.read_text() for p in (REPO / "loader").rglob("*.py"))
    assert [n for n in names if f'"{n}"' not in code] == []
    for unit in shipped():
        if unit.name.endswith(".service"):
            assert unit.values("Service", "EnvironmentFile") == ["/etc/drip-loader/drip-loader.env"]
            assert unit.value("Service", "User") == "drip-loader"


def _wait_listening(proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = LISTENING.search(log.read_text(errors="replace"))
        if found:
            return int(found.group(1))
        assert proc.poll() is None, log.read_text(errors="replace")
        time.sleep(0.05)
    raise AssertionError(f"serve did not start:\n{log.read_text(errors='replace')}")


def test_the_serve_unit_runs_in_its_sandbox_and_stops_on_sigterm_with_exit_0(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    env_file = _env_file(tmp_path, db_url)
    unit = _rendered("drip-loader-serve.service", tmp_path, env_file, port=0)
    (exec_start,) = unit.values("Service", "ExecStart")
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            sandboxed(argv(exec_start)),
            env=service_environment(unit),
            stdout=out,
            stderr=out,
        )
    try:
        port = _wait_listening(proc, log)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as http:
            deadline = time.monotonic() + 30
            while http.get("/healthz").status_code != 200:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            answer = http.post(f"/webhooks/drip/{TOKEN}", content=case_bytes("email_opened"))
            assert answer.status_code == 200, answer.text
        # what systemd does on `systemctl stop`: KillSignal=, then up to TimeoutStopSec=
        assert unit.value("Service", "KillSignal") == "SIGTERM"
        stop_timeout = float(unit.value("Service", "TimeoutStopSec"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(stop_timeout) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log.read_text()
    assert "Stopped after" in output
    assert TOKEN not in output
    run = one(engine, "SELECT status, counts FROM drip._runs WHERE command = 'serve'")
    assert run["status"] == "completed"
    assert run["counts"]["landed"] == 1
    assert one(engine, "SELECT count(*) AS n FROM drip.email_opened")["n"] == 1


def _records(n: int, seed: int) -> list[RawRecord]:
    return [
        (f"test:{i}", line, len(line))
        for i, line in enumerate(generate_events(events=n, seed=seed))
    ]


def test_the_load_unit_maps_what_is_pending(db_url: str, engine: Engine, tmp_path: Path) -> None:
    queued = queue_records(engine, _records(300, seed=3), load_id="left-by-serve")
    assert queued.landed > 0
    unit = _rendered("drip-loader-load.service", tmp_path, _env_file(tmp_path, db_url))
    outcome = run_oneshot(unit, root=tmp_path)
    assert outcome.result == "succeeded", outcome.output
    assert one(engine, "SELECT count(*) AS n FROM drip._pending")["n"] == 0
    mapped = one(engine, "SELECT count(*) AS n FROM drip.tracks")["n"]
    assert mapped > 0


def _tracks(engine: Engine) -> int:
    return int(one(engine, "SELECT count(*) AS n FROM drip.tracks")["n"])


def test_the_import_unit_loads_the_drop_directory_once_and_keeps_the_files(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    unit = _rendered("drip-loader-import.service", tmp_path, _env_file(tmp_path, db_url))
    state = tmp_path / "var" / "lib" / "drip-loader"
    # nothing dropped yet: skipped, not failed
    assert run_oneshot(unit, root=tmp_path).result == "skipped"
    incoming = state / "incoming"
    write_ndjson(incoming / "october.ndjson", generate_events(events=200, seed=1))
    write_ndjson(incoming / ".being-written.ndjson", generate_events(events=50, seed=2))
    (incoming / "notes.txt").write_text("not for the loader\n")
    outcome = run_oneshot(unit, root=tmp_path)
    assert outcome.result == "succeeded", outcome.output
    assert sorted(p.name for p in incoming.iterdir()) == [".being-written.ndjson", "notes.txt"]
    assert list((state / "loading").iterdir()) == []
    assert [p.name for p in (state / "loaded").iterdir()] == ["october.ndjson"]
    loaded = _tracks(engine)
    assert loaded > 0
    assert run_oneshot(unit, root=tmp_path).result == "skipped"

    # the writer renames its file into place: the next run loads it
    (incoming / ".being-written.ndjson").rename(incoming / "november.ndjson")
    # a load that fails (the database refuses the URL) keeps the files for the next run
    broken = _rendered(
        "drip-loader-import.service",
        tmp_path,
        _env_file(tmp_path, db_url.replace("/t_", "/missing_t_"), name="broken.env"),
    )
    assert run_oneshot(broken, root=tmp_path).result == "failed"
    assert [p.name for p in (state / "loading").iterdir()] == ["november.ndjson"]
    assert _tracks(engine) == loaded
    outcome = run_oneshot(unit, root=tmp_path)
    assert outcome.result == "succeeded", outcome.output
    assert sorted(p.name for p in (state / "loaded").iterdir()) == [
        "november.ndjson",
        "october.ndjson",
    ]
    assert _tracks(engine) > loaded

    # the same name dropped again: loaded (adding nothing), and both copies kept
    write_ndjson(incoming / "october.ndjson", generate_events(events=200, seed=1))
    before = _tracks(engine)
    assert run_oneshot(unit, root=tmp_path).result == "succeeded"
    assert _tracks(engine) == before
    assert sorted(p.name for p in (state / "loaded").iterdir()) == [
        "november.ndjson",
        "october.ndjson",
        "october.ndjson.~1~",
    ]


def test_the_sync_unit_copies_drips_records(db_url: str, engine: Engine, tmp_path: Path) -> None:
    with FakeDrip() as drip:
        env_file = _env_file(
            tmp_path,
            db_url,
            DRIP_LOADER_DRIP_API_TOKEN=DRIP_TOKEN,
            DRIP_LOADER_DRIP_API_URL=drip.url,
        )
        unit = _rendered("drip-loader-sync.service", tmp_path, env_file)
        outcome = run_oneshot(unit, root=tmp_path)
    assert outcome.result == "succeeded", outcome.output
    assert DRIP_TOKEN not in outcome.output
    assert one(engine, "SELECT count(*) AS n FROM drip.drip_subscribers")["n"] == 2100


def test_an_exec_line_with_a_dollar_is_read_as_systemd_reads_it() -> None:
    # the drop directory's shell lines rely on argv(): check it against systemd's own rules
    assert argv("/bin/sh -c 'echo $$HOME \"a b\"'") == ["/bin/sh", "-c", 'echo $HOME "a b"']
    with pytest.raises(AssertionError):
        argv("-/bin/true")


INSTALL = r"""
set -eu
repo=$1; shift
# a private /etc and /opt: the host is left as it was
mkdir -p /tmp/install-etc && mount -t tmpfs tmpfs /tmp/install-etc && cp -a /etc/. /tmp/install-etc/
mount --bind /tmp/install-etc /etc
mount -t tmpfs tmpfs /opt && mkdir /opt/drip-loader && mount --bind "$repo" /opt/drip-loader
for step in "$@"; do sh -c "$step"; done
getent passwd drip-loader | cut -d: -f7
stat -c '%a %U %G' /etc/drip-loader/drip-loader.env
cd /etc/systemd/system
systemd-analyze verify drip-loader-*.service drip-loader-*.timer
"""


def test_the_guides_install_steps_set_up_a_host_the_units_verify_on(tmp_path: Path) -> None:
    # the units as shipped (not rendered): /opt/drip-loader is this checkout, with its venv
    assert Path(sys.executable).parent == REPO / ".venv" / "bin", "the checkout's own .venv"
    guide = (REPO / "docs" / "operators.md").read_text()
    (block,) = [b for b in re.findall(r"```sh\n(.*?)```", guide, re.S) if "useradd" in b]
    steps = [
        line.removeprefix("sudo ")
        for line in block.splitlines()
        if line.startswith(("sudo useradd", "sudo install", "sudo cp"))
    ]
    assert len(steps) == 4, steps
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", INSTALL, "install",
         str(REPO), *steps],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout == "/usr/sbin/nologin\n600 root root\n"
