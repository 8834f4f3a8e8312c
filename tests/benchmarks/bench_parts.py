"""What each part of a file load costs Postgres, in CPU microseconds per event.

Run:  .venv/bin/python -m tests.benchmarks.bench_parts [--events 200000]

bench_load times the whole command; this script takes the landing-and-mapping statement
(sql/land/insert_raw.sql + sql/transform/map_and_insert.sql) apart.  It lands a sample
once, keeps its staged rows, then for each variant of the statement starts from an empty
warehouse and runs the variant over the same chunks, reading the CPU time of its own
backend from /proc (so the server must run on this machine).  A variant leaves out one
part (the tracks insert, the collection inserts, the subscriber queue): the difference to
the whole statement is what that part costs.  The subscriber merge that ends a run is
timed on its own.  Server: as for bench_load.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

from loader.domain.registry import DEFAULT_ON
from loader.pipeline.transform import merge_all_subscribers
from loader.warehouse.db import batch_session, make_engine
from loader.warehouse.mapping import map_params, map_tail
from loader.warehouse.partitions import ensure_partitions, forget_partitions
from loader.warehouse.sqlfiles import read_sql
from tests.support.postgres import fresh_database, postgres_server

BIN = Path(sys.executable).parent / "drip-loader"
CHUNK = 5_000
# The landed sample, numbered in input order, kept outside the warehouse schema.
STAGE_SAMPLE = """
CREATE TABLE public.bench_stage AS
SELECT row_number() OVER (ORDER BY received_at, CAST(split_part(origin, ':', 2) AS integer)) AS n,
       _event_key, 1 AS seq, event, occurred_at, is_email, origin, payload
FROM drip._raw_events
"""
FILL_STAGE = """
INSERT INTO _stage (_event_key, seq, event, occurred_at, is_email, origin, payload)
SELECT _event_key, seq, event, occurred_at, is_email, origin, payload
FROM public.bench_stage WHERE n > :low AND n <= :high ORDER BY n
"""


def _without(sql: str, *ctes: str) -> str:
    """``sql`` without the named CTEs (each ``), name AS (`` up to the next CTE) and the
    counts that read them."""
    for cte in ctes:
        found = re.search(rf"\), {cte} AS \(.*?(?=\), \w+ AS \(|\)\nSELECT)", sql, re.S)
        if found is None:
            raise SystemExit(f"no CTE {cte} in the statement: update bench_parts")
        sql = sql[: found.start()] + sql[found.end() :]
        sql = re.sub(rf",?\s*\(SELECT count\(\*\) FROM {cte}\) AS \w+", "", sql)
    return sql


def _raw_only(sql: str) -> str:
    """Only the landing head: no mapping at all."""
    head = sql[: sql.index("-- name: map_and_insert")]
    return head + "unused AS (SELECT 1)\nSELECT (SELECT count(*) FROM src) AS events\n"


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _migrate(url: str) -> None:
    env = {**os.environ, "DRIP_LOADER_DATABASE_URL": url}
    subprocess.run([str(BIN), "migrate"], env=env, check=True, capture_output=True)


def _stage_sample(url: str, events: int, tmp: Path) -> int:
    """Load a sample, keep its landed rows in ``public.bench_stage``; return their number."""
    path = tmp / "events.ndjson"
    subprocess.run(
        [str(BIN), "sample", "--events", str(events), "--seed", "7", "--out", str(path)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "DRIP_LOADER_DATABASE_URL": url}
    subprocess.run([str(BIN), "load", str(path)], env=env, check=True, capture_output=True)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS public.bench_stage"))
        conn.execute(sa.text(STAGE_SAMPLE))
        staged = int(conn.execute(sa.text("SELECT count(*) FROM public.bench_stage")).scalar_one())
    engine.dispose()
    return staged


def _run(url: str, statement: str | None, rows: int) -> tuple[float, float]:
    """CPU seconds of the statement over every chunk, and of the subscriber merge after it."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS drip CASCADE"))
        months = conn.execute(
            sa.text("SELECT DISTINCT occurred_at AT TIME ZONE 'UTC' FROM public.bench_stage")
        ).scalars()
        months = list(months)
    _migrate(url)
    forget_partitions(engine, schema="drip")  # the schema was dropped: every month is new
    ensure_partitions(engine, schema="drip", months=months)
    params = {**map_params(DEFAULT_ON), "load_id": "bench", "received_at": None}
    with engine.connect() as conn:
        batch_session(conn, "drip")
        conn.execute(sa.text(read_sql("land/create_stage.sql")))
        pid = int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
        conn.commit()
        spent = 0.0
        fill = sa.text(FILL_STAGE)
        for low in range(0, rows, CHUNK):
            conn.execute(fill, {"low": low, "high": low + CHUNK})
            before = _cpu(pid)
            if statement is not None:
                conn.execute(sa.text(statement), params).one()
            spent += _cpu(pid) - before
            conn.commit()
        before = _cpu(pid)
        merge_all_subscribers(conn)
        merged = _cpu(pid) - before
    engine.dispose()
    return spent, merged


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    whole = read_sql("land/insert_raw.sql") + map_tail(DEFAULT_ON)
    collections = [f"add_{name}" for name in DEFAULT_ON]
    variants = {
        "whole statement": whole,
        "without tracks": _without(whole, "add_tracks"),
        "without the six tables": _without(whole, *collections),
        "without the subscriber queue": _without(whole, "queue_subscribers"),
        "landing only (no mapping)": _raw_only(whole),
    }
    with (
        tempfile.TemporaryDirectory(prefix="drip-bench-") as tmp,
        postgres_server() as (admin_url, how, _),
    ):
        url = fresh_database(admin_url, "bench_parts")
        rows = _stage_sample(url, args.events, Path(tmp))
        print(f"server: {how}; {rows:,} distinct events in chunks of {CHUNK:,}")
        print("Postgres CPU per event (us) of the landing-and-mapping statement:")
        results = {name: _run(url, sql, rows) for name, sql in variants.items()}
        base, merge = results["whole statement"]
        for name, (spent, _) in results.items():
            part = (
                ""
                if name == "whole statement"
                else f"   (part: {(base - spent) / rows * 1e6:5.1f})"
            )
            print(f"  {name:30} {spent / rows * 1e6:5.1f}{part}")
        print(f"  {'subscriber merge, per event':30} {merge / rows * 1e6:5.1f}")


if __name__ == "__main__":
    main()
