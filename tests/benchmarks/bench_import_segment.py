"""What ``import-segment`` costs against the floor: the same rows copied by bare INSERT ... SELECT.

Run:  .venv/bin/python -m tests.benchmarks.bench_import_segment [--rows 500000] [--fast-server]

It loads a live sample into a fresh warehouse (so cutoffs exist), writes a Segment-made
schema of ``--rows`` rows in all (the six email tables and their tracks rows, spread over
three years out of time order), then imports it with the default batch size and times it.
The floor is one ``INSERT INTO ... SELECT`` per table of the same rows (before the same
cutoff) into copies of our tables made with ``LIKE`` (no keys, no partitions, no
conversions, no ledger): what moving the bytes costs on this server.  It prints rows per
second of both, their ratio, and the WAL each wrote per row.  Server: Postgres's default
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
from loader.warehouse.db import make_engine
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
            conn.execute(sa.text("CHECKPOINT"))
            conn.execute(sa.text("CREATE SCHEMA floor"))
            for table in TABLES:
                conn.execute(sa.text(f"CREATE TABLE floor.{table} (LIKE drip.{table})"))
        floor_wal = _wal(engine)
        started = time.perf_counter()
        floor_rows = 0
        with engine.begin() as conn:
            for table in TABLES:
                names = list(
                    conn.execute(
                        sa.text(
                            "SELECT column_name FROM information_schema.columns WHERE "
                            "table_schema = 'website' AND table_name = :t "
                            "INTERSECT SELECT column_name FROM information_schema.columns "
                            "WHERE table_schema = 'floor' AND table_name = :t"
                        ),
                        {"t": table},
                    ).scalars()
                )
                shared = ", ".join(f'"{c}"' for c in names)
                cutoff = min(cutoffs.values()) if table == "tracks" else cutoffs[table]
                floor_rows += conn.execute(
                    sa.text(
                        f"INSERT INTO floor.{table} ({shared}) SELECT {shared} "
                        f'FROM website.{table} WHERE "timestamp" < :cutoff'
                    ),
                    {"cutoff": cutoff},
                ).rowcount
        floor_seconds = time.perf_counter() - started
        floor_wal = _wal(engine) - floor_wal
        engine.dispose()

    print(
        f"import-segment: {read:,} rows in {seconds:.1f} s = {read / seconds:,.0f} rows/s, "
        f"WAL {wal / read:,.0f} bytes/row (batch {args.batch_size:,})"
    )
    print(
        f"floor (INSERT ... SELECT into bare copies): {floor_rows:,} rows, "
        f"{floor_rows / floor_seconds:,.0f} rows/s, WAL {floor_wal / floor_rows:,.0f} bytes/row"
    )
    per_row, floor_per_row = seconds / read, floor_seconds / floor_rows
    print(
        f"import/floor per row: time {per_row / floor_per_row:.2f}x, "
        f"WAL {(wal / read) / (floor_wal / floor_rows):.2f}x"
    )


if __name__ == "__main__":
    main()
