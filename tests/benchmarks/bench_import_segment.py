"""What ``import-segment`` costs against the floor: the same rows copied by bare INSERT ... SELECT.

Run:  .venv/bin/python -m tests.benchmarks.bench_import_segment [--rows 500000] [--fast-server]

It loads a live sample into a fresh warehouse (so cutoffs exist), writes a Segment-made
schema of ``--rows`` rows in all (the six email tables and their tracks rows, spread over
three years out of time order), then imports it with the default batch size and times it.
The monthly partitions of those three years are made first and timed on their own (once
per warehouse and month, whoever writes first; ``ensure_partitions``).  Two floors, one
``INSERT INTO ... SELECT`` per table of the same rows (before the same cutoffs): into copies
of our tables made with ``LIKE`` (no keys, no partitions: what moving the bytes costs on
this server), and into the tables of a second warehouse schema (keys, partitions, BRIN
indexes: what the rows cost wherever they go, without the import's conversions, batches,
ledger and tracks rows made for the collections).  It prints rows per second, the ratios,
and the WAL per row.  Server: Postgres's default
durability (fsync on) from Debian's binaries unless ``--fast-server`` (the tests' settings)
or DRIP_LOADER_TEST_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from loader.config import Settings
from loader.domain.sample import generate_events
from loader.pipeline.import_plan import TABLES
from loader.pipeline.import_segment import DEFAULT_BATCH_SIZE, import_segment
from loader.pipeline.run import run_pipeline
from loader.warehouse import migrate
from loader.warehouse.db import make_engine
from loader.warehouse.partitions import ensure_partitions, month_of
from tests.support.postgres import fresh_database, postgres_server
from tests.support.segment_schema import generate_segment_schema
from tests.support.warehouse import write_ndjson

SWITCH = datetime(2026, 10, 1, tzinfo=UTC)


def _wal(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT wal_bytes FROM pg_stat_wal")).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=500_000, help="Segment rows in all tables")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--fast-server", action="store_true", help="fsync off (test settings)")
    args = parser.parse_args()
    per_table = args.rows // 12  # six email tables and as many tracks rows

    server = postgres_server(durable=not args.fast_server)
    with server as (admin_url, how, _), tempfile.TemporaryDirectory() as tmp:
        url = fresh_database(admin_url, "bench_import_segment")
        engine = make_engine(url, null_pool=True)
        live = write_ndjson(Path(tmp) / "live.ndjson", generate_events(events=5_000, seed=1))
        run_pipeline(Settings(database_url=url, home=Path(tmp) / "home"), [str(live)])
        written = generate_segment_schema(
            engine,
            "website",
            per_table=per_table,
            start=SWITCH - timedelta(days=3 * 365),
            end=SWITCH,
        )
        with engine.begin() as conn:
            conn.execute(sa.text("CHECKPOINT"))
        print(f"server: {how}; Segment schema: {written:,} rows, {per_table:,} per email table")

        months = {month_of(SWITCH - timedelta(days=d)) for d in range(0, 3 * 365 + 31, 28)}
        started = time.perf_counter()
        for name in ("drip", "floor_wh"):
            migrate.upgrade(engine, schema=name)
            ensure_partitions(engine, schema=name, months=months)
        partitions = (time.perf_counter() - started) / 2

        wal = _wal(engine)
        started = time.perf_counter()
        report = import_segment(
            engine, schema="drip", source_schema="website", batch_size=args.batch_size
        )
        seconds = time.perf_counter() - started
        wal = _wal(engine) - wal
        read = sum(t.read for t in report.tables)
        cutoffs = {t: c.at for t, c in report.cutoffs.items()}

        with engine.begin() as conn:
            conn.execute(sa.text("CREATE SCHEMA floor"))
            for table in TABLES:
                conn.execute(
                    sa.text(f"CREATE TABLE floor.{table} (LIKE drip.{table} INCLUDING DEFAULTS)")
                )
        floors = {name: _floor(engine, name, cutoffs) for name in ("floor", "floor_wh")}
        engine.dispose()

    print(f"partitions of {len(months)} months in every event table: {partitions:.1f} s")
    print(
        f"import-segment: {read:,} rows in {seconds:.1f} s = {read / seconds:,.0f} rows/s, "
        f"WAL {wal / read:,.0f} bytes/row (batch {args.batch_size:,})"
    )
    for name, label in (("floor", "bare copies"), ("floor_wh", "a warehouse's tables")):
        rows, floor_seconds, floor_wal = floors[name]
        print(
            f"floor, INSERT ... SELECT into {label}: {rows:,} rows, "
            f"{rows / floor_seconds:,.0f} rows/s, WAL {floor_wal / rows:,.0f} bytes/row; "
            f"import/floor per row: time {(seconds / read) / (floor_seconds / rows):.2f}x, "
            f"WAL {(wal / read) / (floor_wal / rows):.2f}x"
        )


def _floor(engine: sa.Engine, schema: str, cutoffs: dict[str, datetime]) -> tuple[int, float, int]:
    """Rows, seconds and WAL of copying the rows before the cutoffs into ``schema``'s tables
    with one INSERT ... SELECT per table (the columns both have, as they are)."""
    with engine.begin() as conn:
        conn.execute(sa.text("CHECKPOINT"))
    wal = _wal(engine)
    started = time.perf_counter()
    rows = 0
    with engine.begin() as conn:
        for table in TABLES:
            names = list(
                conn.execute(
                    sa.text(
                        "SELECT column_name FROM information_schema.columns WHERE "
                        "table_schema = 'website' AND table_name = :t "
                        "INTERSECT SELECT column_name FROM information_schema.columns "
                        "WHERE table_schema = :s AND table_name = :t"
                    ),
                    {"t": table, "s": schema},
                ).scalars()
            )
            shared = ", ".join(f'"{c}"' for c in sorted(names) if c != "uuid_ts")
            picked = ", ".join(f's."{c}"' for c in sorted(names) if c != "uuid_ts")
            events = list(cutoffs) if table == "tracks" else [table]
            rows += conn.execute(
                sa.text(
                    f"INSERT INTO {schema}.{table} ({shared}) SELECT {picked} "
                    f"FROM website.{table} s JOIN unnest(CAST(:events AS text[]), "
                    "CAST(:cutoffs AS timestamptz[])) AS c (event, cutoff) "
                    'ON c.event = s.event AND s."timestamp" < c.cutoff'
                ),
                {"events": events, "cutoffs": [cutoffs[e] for e in events]},
            ).rowcount
    return rows, time.perf_counter() - started, _wal(engine) - wal


if __name__ == "__main__":
    main()
