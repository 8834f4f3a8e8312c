"""Benchmark ``drip-loader archive``: its time per million events against the floor of its
design, and the warehouse's storage per event before and after.

Run:  .venv/bin/python -m tests.benchmarks.bench_archive [--events 1000000] [--load-back]
                                                         [--fast-server]

It loads ``--events`` sample events spread over the four months July to October 2026 into
a fresh warehouse (``drip-loader load``, not timed), vacuums it as autovacuum would have,
and prints the storage per event all-in (every table, partition, index and TOAST, divided by
the events in ``tracks``, as ``status`` does).  Then, in one run on one server:
  1. the floor: a server-side ``COPY (SELECT payload ...) TO STDOUT`` of each month's raw
     events, gzipped into a file (what any export of the same bytes must do);
  2. ``archive_months(before=2026-11-01)``: every month written, read back and checked,
     and its raw partition dropped;
and prints the seconds of each, per million events, the ratio archive/floor, the files'
bytes per event, and the storage per event after (raw: 0).  With ``--load-back`` it then
times ``drip-loader load`` of the archive directory into the same warehouse (the raw comes
back; no table row changes).

The server is the tests' (DRIP_LOADER_TEST_DATABASE_URL, else Debian's binaries, else
embedded), a local one started with Postgres's default durability unless ``--fast-server``.
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from loader.domain.registry import COLLECTIONS
from loader.warehouse import migrate
from loader.warehouse.archive import archive_months
from loader.warehouse.db import make_engine
from loader.warehouse.partitions import month_bounds
from loader.warehouse.storage import StorageSummary, storage_summary
from tests.benchmarks.bench_load import BIN, _spread_sample, _vacuum
from tests.support.postgres import fresh_database, postgres_server

START = datetime(2026, 7, 1, tzinfo=UTC)
MONTHS = [date(2026, m, 1) for m in (7, 8, 9, 10)]
BEFORE = date(2026, 11, 1)


def _storage(summary: StorageSummary, label: str) -> str:
    collections = sum(summary.table(c.name).bytes for c in COLLECTIONS)
    raw, tracks = summary.table("_raw_events").bytes, summary.table("tracks").bytes
    other = summary.bytes - raw - tracks - collections
    per = {
        "raw": raw,
        "tracks": tracks,
        "collections": collections,
        "other": other,
    }
    return (
        f"{label}: storage per event, all-in, {summary.events:,} events: "
        f"{summary.per_event():,} bytes = "
        + ", ".join(f"{name} {size / summary.events:,.0f}" for name, size in per.items())
    )


def _floor(url: str, into: Path) -> float:
    """COPY each month's raw payloads out, gzipped at the archive's level: the floor."""
    engine = make_engine(url)
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            for month in MONTHS:
                low, high = month_bounds(month)
                with gzip.open(into / f"floor-{month:%Y-%m}.gz", "wb", compresslevel=6) as out:
                    cursor.copy_expert(
                        "COPY (SELECT payload FROM drip._raw_events WHERE occurred_at >= "
                        f"'{low}' AND occurred_at < '{high}' ORDER BY occurred_at, _event_key) "
                        "TO STDOUT",
                        out,
                        size=1 << 20,
                    )
            cursor.close()
    finally:
        engine.dispose()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--load-back", action="store_true", help="also time loading it back")
    parser.add_argument(
        "--fast-server", action="store_true", help="a local server with the tests' fsync=off"
    )
    args = parser.parse_args()
    with (
        postgres_server(durable=not args.fast_server) as (admin, how, _),
        tempfile.TemporaryDirectory() as tmp,
    ):
        print(f"server: {how}")
        url = fresh_database(admin, "bench_archive")
        engine = make_engine(url)
        migrate.upgrade(engine, schema="drip")
        sample = Path(tmp) / "sample.ndjson"
        _spread_sample(sample, args.events, args.seed, start=START, span=timedelta(days=122))
        env_url = {"DRIP_LOADER_DATABASE_URL": url}
        subprocess.run([str(BIN), "load", str(sample)], env={**os.environ, **env_url}, check=True,
                       capture_output=True)  # fmt: skip
        _vacuum(url)
        before = storage_summary(engine, schema="drip")
        raw_events = before.table("_raw_events").rows
        print(f"events: {args.events:,} sampled, {raw_events:,} raw events in 4 months")
        print(_storage(before, "before archive"))

        floor_dir = Path(tmp) / "floor"
        floor_dir.mkdir()
        floor = _floor(url, floor_dir)
        _vacuum(url, analyze=False)
        out = Path(tmp) / "archive"
        started = time.perf_counter()
        report = archive_months(engine, schema="drip", before=BEFORE, to=out)
        seconds = time.perf_counter() - started
        files = sum(p.stat().st_size for p in out.iterdir())
        per_million = 1e6 / raw_events
        print(
            f"floor   (COPY out + gzip):          {floor:7.2f} s  {floor * per_million:7.2f} s per million"
        )
        print(
            f"archive (write, check, drop):       {seconds:7.2f} s  {seconds * per_million:7.2f} s per million"
        )
        print(f"ratio archive/floor (time): {seconds / floor:.2f}")
        print(
            f"archive files: {files / 1e6:,.1f} MB, {files / raw_events:,.0f} bytes per event "
            f"({len(report.months)} months)"
        )
        _vacuum(url)
        after = storage_summary(engine, schema="drip")
        print(_storage(after, "after archive"))
        assert after.table("_raw_events").rows == 0
        if args.load_back:
            started = time.perf_counter()
            subprocess.run([str(BIN), "load", str(out)], env={**os.environ, **env_url}, check=True,
                           capture_output=True)  # fmt: skip
            back = time.perf_counter() - started
            print(f"load of the archive back (raw returns): {back:7.2f} s  "
                  f"{back * per_million:7.2f} s per million")  # fmt: skip
        engine.dispose()


if __name__ == "__main__":
    main()
