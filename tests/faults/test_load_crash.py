"""Faults during `load`: killed at random points, or the database restarted under it.

After every fault a rerun must end with exactly the tables a clean single run gives, and the
accounting identity must hold: every input record is landed once, a duplicate, or rejected.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from loader.domain.sample import generate_events
from loader.warehouse.db import make_engine
from loader.warehouse.status import GONE, RunLine, warehouse_status
from tests.support.postgres import TEMPLATE, LocalServer, fresh_database
from tests.support.warehouse import snapshot, start_load, write_ndjson

CHUNKS = {"DRIP_LOADER_BATCH_SIZE": "5000"}

EVENTS = 100_000


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "events.ndjson"
    bad = [b"{not json", b'{"event": "subscriber.opened_email"}', b"[]"]
    lines = list(generate_events(events=EVENTS, seed=2026))
    for i, junk in enumerate(bad):
        lines.insert(1000 + i * 30_000, junk)
    return write_ndjson(path, lines)


def _clean_run(pg: dict[str, object], path: Path) -> dict[str, list[tuple[object, ...]]]:
    url = fresh_database(str(pg["url"]), "faults_clean", template=TEMPLATE)
    proc = start_load(url, path, **CHUNKS)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    engine = make_engine(url)
    try:
        return snapshot(engine)
    finally:
        engine.dispose()


def test_sigkill_at_random_points_then_rerun_gives_exact_tables(
    db_url: str, engine: sa.Engine, big_file: Path, pg: dict[str, object]
) -> None:
    rng = random.Random(7)
    kills = 0
    for _ in range(3):
        proc = start_load(db_url, big_file, **CHUNKS)
        time.sleep(rng.uniform(0.8, 3.0))  # somewhere in migrate / landing / mapping
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
    assert kills >= 2, "the load finished before it could be killed: make the file bigger"
    final = start_load(db_url, big_file, **CHUNKS)
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    import json

    report = json.loads(out)
    assert (
        report["read"] == EVENTS + 3 == report["landed"] + report["duplicates"] + report["rejected"]
    )
    assert report["rejected"] == 3
    got = snapshot(engine)
    expected = _clean_run(pg, big_file)
    assert got == expected
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM drip._pending")).scalar_one() == 0


def test_database_restart_during_load_fails_cleanly_and_rerun_completes(
    stoppable: tuple[str, LocalServer], big_file: Path, pg: dict[str, object]
) -> None:
    db_url, server = stoppable
    proc = start_load(db_url, big_file, **CHUNKS)
    time.sleep(1.5)
    server.pg_ctl("stop")
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        server.pg_ctl("start")
    assert proc.returncode == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "Traceback" not in err
    rerun = start_load(db_url, big_file, **CHUNKS)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    engine = make_engine(db_url)
    try:
        assert snapshot(engine) == _clean_run(pg, big_file)
    finally:
        engine.dispose()


def _running_load(db_url: str, engine: sa.Engine, path: Path) -> subprocess.Popen[str]:
    """A load of ``path`` in a child process, once its run is recorded and landing."""
    proc = start_load(db_url, path, **CHUNKS)
    deadline = time.monotonic() + 60
    while True:
        with engine.connect() as conn:
            landed = conn.execute(sa.text("SELECT count(*) FROM drip._raw_events")).scalar_one()
        if landed:
            return proc
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the load did not start landing within 60 s"
        time.sleep(0.05)


def _last_run(engine: sa.Engine) -> RunLine:
    runs = warehouse_status(engine, schema="drip").last_runs
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.parametrize(
    ("sig", "code", "reason"),
    [
        (signal.SIGINT, 130, "interrupted by SIGINT (Ctrl-C)"),
        (signal.SIGTERM, 143, "interrupted by SIGTERM"),
    ],
)
def test_a_load_stopped_by_a_signal_is_recorded_interrupted_never_running(
    db_url: str, engine: sa.Engine, big_file: Path, sig: signal.Signals, code: int, reason: str
) -> None:
    proc = _running_load(db_url, engine, big_file)
    assert _last_run(engine).status == "running"  # alive: it holds its lock
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Interrupted: committed chunks are kept" in err
    run = _last_run(engine)
    assert (run.status, run.error) == ("interrupted", reason)
    assert run.finished_at is not None
    assert run.counts is not None and run.counts["landed"] > 0


def test_a_killed_load_shows_as_not_running(db_url: str, engine: sa.Engine, big_file: Path) -> None:
    proc = _running_load(db_url, engine, big_file)
    assert _last_run(engine).status == "running"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    # Postgres ends the killed process's sessions (and their locks) once it notices.
    deadline = time.monotonic() + 30
    while _last_run(engine).status == "running":
        assert time.monotonic() < deadline, "the killed load still shows as running"
        time.sleep(0.1)
    assert _last_run(engine).status == GONE
    with engine.connect() as conn:  # the row itself is left as it was: nobody could end it
        assert conn.execute(sa.text("SELECT status FROM drip._runs")).scalar_one() == "running"
