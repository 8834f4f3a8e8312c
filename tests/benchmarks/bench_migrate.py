"""Benchmark revision 0008 (monthly partitions): its time per million events, there and back.

Run:  .venv/bin/python -m tests.benchmarks.bench_migrate [--events 1000000] [--old fd4d59c]
                                                          [--downgrade] [--fast-server]

It takes the code of commit ``--old`` (revision 0007: ``git archive`` into a temporary
folder) and has it load ``--events`` sample events spread over a year, in time order, into
a warehouse of its own layout.  Then, on the same server (default durability, as
bench_load), it times ``drip-loader migrate`` of this checkout, which runs 0008, and prints
its progress lines, seconds per million events and the WAL it wrote, with the storage per
event (all-in) before and after.  ``--downgrade`` also times the way back to 0007.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from loader.warehouse import migrate
from loader.warehouse.db import make_engine
from tests.benchmarks.bench_load import (
    BIN,
    LATEST,
    _spread_sample,
    _vacuum,
    _wal,
    _wal_line,
    storage_per_event,
)
from tests.support.postgres import fresh_database, postgres_server

ROOT = Path(__file__).resolve().parents[2]


def _old_code(commit: str, into: Path) -> Path:
    """The tree of ``commit`` in ``into`` (its loader, sql and migrations)."""
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--old", default="fd4d59c", help="a commit whose head revision is 0007")
    parser.add_argument("--downgrade", action="store_true", help="also time the way back")
    parser.add_argument(
        "--fast-server", action="store_true", help="a local server with the tests' fsync=off"
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="drip-bench-") as tmp,
        postgres_server(durable=not args.fast_server) as (admin_url, how, _),
    ):
        print(f"server: {how}; machine: {os.cpu_count()} cores")
        old = _old_code(args.old, Path(tmp) / "old")
        path = Path(tmp) / "events.ndjson"
        year = timedelta(days=365)
        _spread_sample(path, args.events, args.seed, start=LATEST - year, span=year)
        url = fresh_database(admin_url, "bench_migrate")
        env = {**os.environ, "DRIP_LOADER_DATABASE_URL": url}
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "loader", "load", str(path)],
            cwd=old,
            env={**env, "PYTHONPATH": str(old)},
            check=True,
            capture_output=True,
        )
        path.unlink()
        engine = make_engine(url)
        revision = migrate.current_revision(engine, schema="drip")
        engine.dispose()
        print(
            f"preload with {args.old} (revision {revision}): {args.events:,} events over a year "
            f"in {time.perf_counter() - started:.1f} s"
        )
        _vacuum(url)
        print("before: " + storage_per_event(url))
        steps = [("upgrade", [str(BIN), "migrate"])]
        if args.downgrade:
            steps.append(
                (
                    "downgrade",
                    [sys.executable, "-c", _DOWNGRADE],
                )
            )
        for name, command in steps:
            wal = _wal(url)
            started = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"{name} failed: {done.stderr}")
            lines = done.stderr.strip().splitlines()
            print(f"{name}: {len(lines)} progress line(s), the last ones:")
            for line in lines[-4:]:
                print(f"  {line}")
            print(
                f"{name}: {seconds:.1f} s, {seconds / args.events * 1e6:.1f} s per million events"
            )
            print(_wal_line(name, wal, _wal(url), args.events))
            _vacuum(url)
            print(f"after the {name}: " + storage_per_event(url))


_DOWNGRADE = (
    "import os; from loader.warehouse import migrate; from loader.warehouse.db import make_engine; "
    "migrate.downgrade(make_engine(os.environ['DRIP_LOADER_DATABASE_URL']), schema='drip', "
    "revision='0007')"
)


if __name__ == "__main__":
    main()
