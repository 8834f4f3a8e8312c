"""Benchmark ``drip-loader load`` against the floor of its design: a plain COPY of the same lines.

Run:  .venv/bin/python -m tests.benchmarks.bench_load [--events 200000] [--rss-events 100000 1000000]

It generates the events with ``drip-loader sample``, then in one run on one server:
  1. ``drip-loader load FILE`` into a fresh database (file → raw + collections + tracks, committed);
  2. the same command again (a rerun: everything is a duplicate);
  3. a server-side COPY of the same lines into a one-column jsonb table (the floor);
and prints events/s for each, the ratio load/floor and the peak RSS of the ``load`` process,
then the peak RSS of ``load`` for each size in ``--rss-events``.  The server is the one the
tests use (DRIP_LOADER_TEST_DATABASE_URL, else Debian's binaries, else embedded).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from loader.db import make_engine
from tests.support.postgres import database_url, postgres_server

BIN = Path(sys.executable).parent / "drip-loader"


def _sample(path: Path, events: int, seed: int) -> None:
    subprocess.run(
        [str(BIN), "sample", "--events", str(events), "--seed", str(seed), "--out", str(path)],
        check=True,
        capture_output=True,
    )


def _fresh_db(admin: sa.Engine, admin_url: str, name: str) -> str:
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return database_url(admin_url, name)


def _timed_load(url: str, path: Path) -> tuple[float, int]:
    """Seconds and peak RSS (KiB) of one ``drip-loader load`` process."""
    env = {**os.environ, "DRIP_LOADER_DATABASE_URL": url}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN), "load", str(path), "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"load failed: {proc.stderr.read().decode() if proc.stderr else status}")
    return seconds, usage.ru_maxrss


def _copy_floor(url: str, path: Path) -> float:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS copy_floor"))
        conn.execute(sa.text("CREATE TABLE copy_floor (doc jsonb)"))
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        with open(path, "rb") as handle:
            # CSV with quote/delimiter bytes that never occur in JSON: each line is one value, as is.
            cursor.copy_expert(
                "COPY copy_floor (doc) FROM STDIN WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')",
                handle,
                size=1 << 18,
            )
        raw.commit()
        seconds = time.perf_counter() - started
    finally:
        raw.close()
        engine.dispose()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rss-events", type=int, nargs="*", default=[100_000, 1_000_000])
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="drip-bench-") as tmp,
        postgres_server() as (admin_url, how, _),
    ):
        admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
        print(f"server: {how}; machine: {os.cpu_count()} cores")
        path = Path(tmp) / "events.ndjson"
        _sample(path, args.events, args.seed)
        size_mb = path.stat().st_size / 1e6
        url = _fresh_db(admin, admin_url, "bench_load")
        load_s, load_rss = _timed_load(url, path)
        rerun_s, _ = _timed_load(url, path)
        floor_s = _copy_floor(_fresh_db(admin, admin_url, "bench_floor"), path)
        n = args.events
        print(f"events: {n:,} ({size_mb:.1f} MB NDJSON)")
        print(
            f"load   (file -> raw + collections + tracks): {load_s:6.2f} s  {n / load_s:>9,.0f} events/s  peak RSS {load_rss / 1024:.0f} MB"
        )
        print(
            f"rerun  (same file, all duplicates):          {rerun_s:6.2f} s  {n / rerun_s:>9,.0f} events/s"
        )
        print(
            f"floor  (plain COPY into one jsonb column):   {floor_s:6.2f} s  {n / floor_s:>9,.0f} events/s"
        )
        print(f"ratio load/floor: {floor_s / load_s:.2f}   rerun/floor: {floor_s / rerun_s:.2f}")
        for events in args.rss_events:
            rss_path = Path(tmp) / f"rss-{events}.ndjson"
            _sample(rss_path, events, args.seed)
            seconds, rss = _timed_load(_fresh_db(admin, admin_url, "bench_rss"), rss_path)
            print(
                f"peak RSS of load at {events:>9,} events: {rss / 1024:6.0f} MB  ({events / seconds:,.0f} events/s)"
            )
            rss_path.unlink()
        admin.dispose()


if __name__ == "__main__":
    main()
