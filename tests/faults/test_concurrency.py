"""Concurrency: two loads and a receiver at once, and two receivers behind one database.

Receivers are stateless; they coordinate only through Postgres (event keys, the pending
queue with SKIP LOCKED).  Whatever the interleaving, the tables must equal those of one
clean load of the same events.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa

from loader.domain.sample import generate_events
from loader.warehouse.db import make_engine
from tests.support.postgres import TEMPLATE, fresh_database
from tests.support.serve import ServeProcess
from tests.support.warehouse import TABLES, snapshot, write_ndjson


def _clean(
    pg: dict[str, object], lines: list[bytes], tmp_path: Path
) -> dict[str, list[tuple[object, ...]]]:
    url = fresh_database(str(pg["url"]), "concurrency_clean", template=TEMPLATE)
    path = write_ndjson(tmp_path / "clean.ndjson", lines)
    env = {**os.environ, "DRIP_LOADER_DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "loader", "load", str(path)],
        env=env,
        check=True,
        capture_output=True,
    )
    engine = make_engine(url)
    try:
        return snapshot(engine)
    finally:
        engine.dispose()


def _tables(snap: dict[str, list[tuple[object, ...]]]) -> dict[str, list[tuple[object, ...]]]:
    # Which copy of a snapshot-changed retry is kept depends on who landed it first; the
    # events, their ids and every table mapped from them must not.
    return {t: snap[t] for t in TABLES} | {"_raw_keys": [r[:1] for r in snap["_raw_events"]]}


def _wait_transformed(engine: sa.Engine, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(sa.text("SELECT count(*) FROM drip._pending")).scalar_one() == 0:
                return
        time.sleep(0.1)
    raise AssertionError("pending events were not transformed in time")


def test_two_loads_and_a_receiver_with_overlapping_inputs(
    db_url: str, engine: sa.Engine, tmp_path: Path, pg: dict[str, object]
) -> None:
    lines = list(generate_events(events=9000, seed=31))
    a = write_ndjson(tmp_path / "a.ndjson", lines[:6000])
    b = write_ndjson(tmp_path / "b.ndjson", lines[3000:])
    posted = lines[1500:7500:3]
    env = {**os.environ, "DRIP_LOADER_DATABASE_URL": db_url, "DRIP_LOADER_BATCH_SIZE": "700"}
    with ServeProcess(db_url, tmp_path / "serve.log") as server:
        server.wait_healthy()
        loads = [
            subprocess.Popen(
                [sys.executable, "-m", "loader", "load", str(p)], env=env, stderr=subprocess.PIPE
            )
            for p in (a, b)
        ]
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda body: server.post(body).status_code, posted))
        for proc in loads:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        assert set(statuses) == {200}
        _wait_transformed(engine)
        assert server.stop() == 0
    assert _tables(snapshot(engine)) == _tables(_clean(pg, lines, tmp_path))


def test_two_receivers_behind_one_database(
    db_url: str, engine: sa.Engine, tmp_path: Path, pg: dict[str, object]
) -> None:
    lines = list(generate_events(events=3000, seed=32))
    with (
        ServeProcess(db_url, tmp_path / "one.log") as one,
        ServeProcess(db_url, tmp_path / "two.log") as two,
    ):
        one.wait_healthy()
        two.wait_healthy()
        # a load balancer spreads requests; Drip's retries land on either replica
        jobs = [(one if i % 2 else two, body) for i, body in enumerate(lines)]
        jobs += [(two if i % 2 else one, body) for i, body in enumerate(lines[::5])]
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda job: job[0].post(job[1]).status_code, jobs))
        assert set(statuses) == {200}
        _wait_transformed(engine)
        assert one.stop() == 0 and two.stop() == 0
    assert _tables(snapshot(engine)) == _tables(_clean(pg, lines, tmp_path))
