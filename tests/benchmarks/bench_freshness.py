"""What ``dbt source freshness`` costs Postgres on ``tracks``, with and without the filter.

Run:  .venv/bin/python -m tests.benchmarks.bench_freshness [--rows 1000000] [--days 90]

It fills ``tracks`` of a migrated warehouse with ``--rows`` events received evenly over the
last ``--days`` days, appended in ``received_at`` order as the loader writes them, then
VACUUM ANALYZE (autovacuum does the same to an insert-only table: it summarizes the BRIN
ranges).  It then runs the query dbt-postgres sends for freshness (its ``collect_freshness``
macro: ``max(loaded_at_field)`` and ``now()``), once over the whole table and once with the
generated sources' ``filter`` (:data:`loader.analyst.dbt_sources.FRESHNESS_FILTER`), and prints the
median time of ``--repeat`` runs, the buffers each reads and its plan.  Server: as for the
tests (DRIP_LOADER_TEST_DATABASE_URL, else Debian's binaries, else embedded).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from loader.analyst.dbt_sources import FRESHNESS_FILTER
from loader.warehouse import migrate
from loader.warehouse.db import make_engine
from loader.warehouse.partitions import ensure_partitions
from tests.support.postgres import fresh_database, postgres_server

FILL = """
INSERT INTO drip.tracks (id, anonymous_id, event, event_text, original_timestamp, "timestamp",
                         received_at, sent_at, context_library_name, context_library_version,
                         context_integration_name, context_integration_version,
                         context_traits_email, context_drip_account_id, context_drip_subscriber_id)
SELECT 'drip-' || md5(CAST(n AS text)) || left(md5(CAST(-n AS text)), 8),
       'person' || (n % 50000) || '@example.com', 'email_opened', 'Email Opened', t, t, t, t,
       'drip-loader', '0.1.0', 'drip', '1.0.0', 'person' || (n % 50000) || '@example.com',
       '9999999', 'sub' || (n % 50000)
FROM (SELECT n, now() - (:rows - n) * (interval '1 day' * :days / :rows) AS t
      FROM generate_series(1, :rows) AS n) AS s
"""
QUERY = "SELECT max(received_at) AS max_loaded_at, now() AS snapshotted_at FROM drip.tracks"


def _measure(conn: sa.Connection, sql: str, repeat: int) -> tuple[float, str, list[str]]:
    """Median milliseconds, buffers read and the plan of ``sql``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        conn.execute(sa.text(sql)).one()
        times.append((time.perf_counter() - started) * 1000)
    plan = [
        row[0]
        for row in conn.execute(sa.text(f"EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, COSTS OFF) {sql}"))
    ]
    buffers = next((line.strip() for line in plan if "Buffers:" in line), "Buffers: none")
    return statistics.median(times), buffers, plan


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    with postgres_server() as (admin_url, how, _):
        engine = make_engine(fresh_database(admin_url, "bench_freshness"), null_pool=True)
        try:
            migrate.upgrade(engine, schema="drip")
            now = datetime.now(UTC)
            days = (now - timedelta(days=d) for d in range(args.days + 1))
            ensure_partitions(engine, schema="drip", months=days)
            started = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(sa.text(FILL), {"rows": args.rows, "days": args.days})
            filled = time.perf_counter() - started
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE drip.tracks"))
                size = conn.execute(
                    sa.text("SELECT pg_size_pretty(pg_table_size('drip.tracks'))")
                ).scalar_one()
                print(
                    f"server: {how}; tracks: {args.rows:,} rows over {args.days} days, {size} "
                    f"(filled in {filled:.1f} s)"
                )
                for label, sql in (
                    ("whole table", QUERY),
                    (f"filter {FRESHNESS_FILTER}", f"{QUERY} WHERE {FRESHNESS_FILTER}"),
                ):
                    millis, buffers, plan = _measure(conn, sql, args.repeat)
                    print(f"\n{label}: {millis:,.1f} ms (median of {args.repeat}); {buffers}")
                    print("\n".join(f"    {line}" for line in plan))
        finally:
            engine.dispose()


if __name__ == "__main__":
    main()
