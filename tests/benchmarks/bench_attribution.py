"""Benchmark ``drip-loader report attribution`` on 1M Drip events and 1M conversions.

Run:  .venv/bin/python -m tests.benchmarks.bench_attribution [--events 1000000]
      [--conversions 1000000] [--people 200000]

Builds, with set-based SQL (generate_series, not through ``load``): ``--events`` Drip
touches split evenly between ``email_link_clicked`` and ``email_opened`` of ``--people``
subscribers (70% with a user id, the rest known by email as Drip's anonymous_id) over 90
days and 200 emails, their ``subscribers`` rows, and a ``website`` schema in Segment's
layout: ``order_completed`` with ``--conversions`` rows by twice as many people (half of
them subscribers; a user id on half, an email on a quarter, a cookie anonymous_id on all)
and ``identifies`` linking a third of the cookies to an email.  Then it times the report
(a ``drip-loader`` process, like an analyst runs it) for all time, for the last 30 days,
and for opens; without and with the conversion-side indexes docs/analysts.md discusses.
It prints wall seconds and the CPU seconds of the report process and Postgres (steady
when other work shares the cores).  The server is the one the tests use (DRIP_LOADER_TEST_DATABASE_URL, else Debian's
binaries, else embedded).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from sqlalchemy import text

from loader.warehouse import migrate
from loader.warehouse.db import make_engine
from loader.warehouse.partitions import ensure_partitions
from tests.benchmarks.bench_load import _ServerCpu
from tests.support.postgres import fresh_database, postgres_server

BIN = Path(sys.executable).parent / "drip-loader"

COLLECTION = """
INSERT INTO drip.{table} (id, anonymous_id, user_id, event, event_text, original_timestamp,
    "timestamp", received_at, sent_at, context_traits_email, context_drip_subscriber_id,
    email_id, email_subject)
SELECT '{table}-' || n,
       CASE WHEN p % 10 >= 7 THEN 'p' || p || '@example.com' END,
       CASE WHEN p % 10 < 7 THEN 'u_' || p END,
       '{table}', '{text}', ts, ts, ts, ts,
       'p' || p || '@example.com', 'sub_' || p,
       CAST(7000 + n % 200 AS text), 'Email ' || n % 200
FROM (
    SELECT n, 1 + (hashint4(n) & 2147483647) % :people AS p,
           timestamptz '2026-07-01' + (hashint4(n + 7) & 2147483647) % 7776000 * interval '1 s'
               AS ts
    FROM generate_series(1, :events) AS n
) g
"""

SUBSCRIBERS = """
INSERT INTO drip.subscribers (id, email, user_id, first_seen_at, last_seen_at)
SELECT 'sub_' || p, 'p' || p || '@example.com', CASE WHEN p % 10 < 7 THEN 'u_' || p END,
       timestamptz '2026-07-01', timestamptz '2026-07-01'
FROM generate_series(1, :people) AS p
"""

WEBSITE = """
CREATE SCHEMA website;
CREATE TABLE website.order_completed (
    id text PRIMARY KEY, anonymous_id text, user_id text, context_traits_email text,
    event text, event_text text, "timestamp" timestamptz NOT NULL, revenue numeric
);
CREATE TABLE website.identifies (
    id text PRIMARY KEY, anonymous_id text, user_id text, email text, "timestamp" timestamptz
);
"""

CONVERSIONS = """
INSERT INTO website.order_completed
SELECT 'o' || n, 'anon-' || p,
       CASE WHEN p % 2 = 0 THEN 'u_' || p END,
       CASE WHEN p % 4 = 1 THEN ' P' || p || '@Example.com ' END,
       'order_completed', 'Order Completed',
       timestamptz '2026-07-01' + (hashint4(n + 11) & 2147483647) % 7776000 * interval '1 s',
       (hashint4(n + 13) & 2147483647) % 20000 / 100.0
FROM (
    SELECT n, 1 + (hashint4(n + 3) & 2147483647) % (2 * :people) AS p
    FROM generate_series(1, :conversions) AS n
) g
"""

IDENTIFIES = """
INSERT INTO website.identifies
SELECT 'i' || p, 'anon-' || p, NULL, 'p' || p || '@example.com', timestamptz '2026-07-01'
FROM generate_series(1, 2 * :people) AS p
WHERE p % 3 = 0
"""

INDEXES = """
CREATE INDEX ON website.order_completed ("timestamp");
CREATE INDEX ON website.identifies (anonymous_id);
CREATE INDEX ON website.identifies (user_id);
ANALYZE website.order_completed;
ANALYZE website.identifies;
"""


def _time(url: str, server: _ServerCpu, *args: str) -> tuple[float, float | None, int]:
    """Seconds, CPU seconds (the process and Postgres; None for a server elsewhere) and
    output rows of one ``drip-loader report attribution`` process."""
    server_before = server.seconds()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [str(BIN), "report", "attribution", *args, "--format", "csv", "--database-url", url],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"report attribution failed: {done.stderr}")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_after = server.seconds()
    cpu = None
    if server_before is not None and server_after is not None:
        cpu = (
            server_after
            - server_before
            + children.ru_utime
            - children_before.ru_utime
            + children.ru_stime
            - children_before.ru_stime
        )
    return seconds, cpu, len(done.stdout.splitlines()) - 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--conversions", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=200_000)
    args = parser.parse_args()

    with postgres_server() as (admin_url, how, _):
        url = fresh_database(admin_url, "bench_attribution")
        engine = make_engine(url, null_pool=True)
        migrate.upgrade(engine, schema="drip")
        # the events fall in the 90 days from 2026-07-01 (COLLECTION)
        months = [date(2026, m, 1) for m in (7, 8, 9)]
        ensure_partitions(engine, schema="drip", months=months)
        started = time.perf_counter()
        half = {"events": args.events // 2, "people": args.people}
        with engine.begin() as conn:
            for table, label in (
                ("email_link_clicked", "Email Link Clicked"),
                ("email_opened", "Email Opened"),
            ):
                conn.execute(text(COLLECTION.format(table=table, text=label)), half)
            conn.execute(text(SUBSCRIBERS), {"people": args.people})
            conn.exec_driver_sql(WEBSITE)
            conn.execute(
                text(CONVERSIONS), {"conversions": args.conversions, "people": args.people}
            )
            conn.execute(text(IDENTIFIES), {"people": args.people})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        print(
            f"server: {how}; built {args.events:,} Drip events, {args.conversions:,} "
            f"conversions in {time.perf_counter() - started:.1f} s"
        )
        server = _ServerCpu(url)
        orders = ("--conversions", "website.order_completed", "--value-column", "revenue")
        runs = {
            "all time, clicks": orders,
            "last 30 days, clicks": (*orders, "--since", "2026-09-01"),
            "all time, opens": (*orders, "--touch", "open"),
        }
        for indexes in (False, True):
            if indexes:
                with engine.begin() as conn:
                    conn.exec_driver_sql(INDEXES)
            for label, options in runs.items():
                seconds, cpu, rows = _time(url, server, *options)
                print(
                    f"{'with' if indexes else 'without'} conversion indexes, {label}: "
                    f"{seconds:.2f} s, CPU {'?' if cpu is None else f'{cpu:.2f}'} s "
                    f"({rows} rows)"
                )
        engine.dispose()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
