"""Time-ordered storage: monthly partitions made on demand, keys led by the event's time,
ids that stay unique across partitions, queries that read only the months they ask for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loader.config import Settings
from loader.domain.registry import COLLECTIONS
from loader.domain.sample import MEAN_GAP, generate_events
from loader.errors import DatabaseError
from loader.pipeline.land import land_records
from loader.warehouse.partitions import (
    PARTITIONED,
    ensure_partitions,
    forget_partitions,
    month_bounds,
    month_of,
    partition_months,
    partition_name,
)
from loader.warehouse.sqlfiles import read_sql
from tests.casefiles import case
from tests.support.postgres import TEMPLATE, fresh_database
from tests.support.serve import ServeProcess
from tests.support.warehouse import TABLES, load_lines, queue_records, rows, snapshot, write_ndjson


def months_between(first: date, count: int) -> list[date]:
    found, month = [], first
    for _ in range(count):
        found.append(month)
        month = month_of(datetime(month.year, month.month, 28) + timedelta(days=7))
    return found


def spread(events: int, seed: int, start: datetime, days: int) -> list[bytes]:
    """``events`` sample bodies in time order from ``start`` over about ``days``."""
    factor = timedelta(days=days) / (events * MEAN_GAP)
    return list(generate_events(events=events, seed=seed, start=start, spread=factor))


def body_at(occurred_at: str) -> bytes:
    body = case("email_opened")
    body["occurred_at"] = occurred_at
    return orjson.dumps(body)


def test_months_and_names_are_utc_months() -> None:
    assert partition_name("tracks", date(2026, 10, 1)) == "tracks_p202610"
    assert month_bounds(date(2026, 12, 1)) == ("2026-12-01 00:00:00+00", "2027-01-01 00:00:00+00")
    assert month_bounds(date(9999, 12, 1))[1] == "10000-01-01 00:00:00+00"
    # 01:30 on November 1st at +02:00 is still October in UTC
    east = datetime(2026, 11, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert month_of(east) == date(2026, 10, 1)
    assert month_of(datetime(2026, 10, 31, 20, tzinfo=timezone(timedelta(hours=-7)))) == date(
        2026, 11, 1
    )
    assert month_of(date(2026, 10, 17)) == date(2026, 10, 1)


def test_ensure_makes_each_months_partitions_once(engine: Engine) -> None:
    months = [date(2026, 10, 5), date(1999, 12, 31), date(9999, 12, 1)]
    created = ensure_partitions(engine, schema="drip", months=months)
    assert len(created) == 3 * len(PARTITIONED)
    assert ensure_partitions(engine, schema="drip", months=months) == []  # cached
    forget_partitions(engine, schema="drip")
    assert ensure_partitions(engine, schema="drip", months=months) == []  # asked, all there
    found = partition_months(engine, schema="drip")
    assert (
        set(found) == set(PARTITIONED) == {"_raw_events", "tracks", *(c.name for c in COLLECTIONS)}
    )
    assert all(
        months == [date(1999, 12, 1), date(2026, 10, 1), date(9999, 12, 1)]
        for months in found.values()
    )
    bounds = rows(
        engine,
        "SELECT pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_class c "
        "WHERE c.oid = 'drip.email_opened_p202610'::regclass",
    )
    assert bounds == [
        {"bound": "FOR VALUES FROM ('2026-10-01 00:00:00+00') TO ('2026-11-01 00:00:00+00')"}
    ]


def test_a_month_is_made_as_its_first_event_arrives_old_or_new(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    lines = [body_at("1998-02-03T04:05:06Z"), body_at("2031-07-08T09:10:11Z")]
    load_lines(settings, tmp_path, lines)
    assert partition_months(engine, schema="drip")["tracks"] == [
        date(1998, 2, 1),
        date(2031, 7, 1),
    ]
    assert rows(engine, "SELECT tableoid::regclass::text AS part FROM drip.tracks ORDER BY 1") == [
        {"part": "drip.tracks_p199802"},
        {"part": "drip.tracks_p203107"},
    ]


def test_a_second_row_with_an_existing_id_cannot_enter(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    # one instant, three spellings: 23:30 UTC on October 31st is November 1st at +02:00
    # and still October 31st at -07:00; the id hashes the instant, so it is one event
    spellings = ["2026-10-31T23:30:00Z", "2026-11-01T01:30:00+02:00", "2026-10-31T16:30:00-07:00"]
    first = load_lines(settings, tmp_path, [body_at(spellings[0])], name="a.ndjson")
    assert first.landed == 1
    again = load_lines(settings, tmp_path, [body_at(s) for s in spellings], name="b.ndjson")
    assert (again.landed, again.duplicates) == (0, 3)
    queued = queue_records(engine, [("webhook", body_at(spellings[1]), 0)], load_id="w")
    assert (queued.landed, queued.duplicates) == (0, 1)
    for table in ("_raw_events", "tracks", "email_opened"):
        assert rows(
            engine, f"SELECT count(*) AS n, count(DISTINCT tableoid) AS parts FROM drip.{table}"
        ) == [{"n": 1, "parts": 1}]
    # the key refuses a copy of a row, whatever writes it
    for table, key, at in (
        ("tracks", "id", "timestamp"),
        ("email_opened", "id", "timestamp"),
        ("_raw_events", "_event_key", "occurred_at"),
    ):
        with pytest.raises(sa.exc.IntegrityError, match="duplicate key"), engine.begin() as conn:
            conn.execute(sa.text(f"INSERT INTO drip.{table} SELECT * FROM drip.{table}"))
        with engine.begin() as conn:
            (month,) = conn.execute(
                sa.text(
                    f"SELECT date_trunc('month', \"{at}\" AT TIME ZONE 'UTC') FROM drip.{table}"
                )
            ).one()
            assert month == datetime(2026, 10, 1)
            assert (
                conn.execute(sa.text(f"SELECT count(DISTINCT {key}) FROM drip.{table}")).scalar()
                == 1
            )


def test_an_id_not_computed_from_its_time_is_unique_only_with_it(engine: Engine) -> None:
    # The guarantee is exactly this: (timestamp, id) is unique.  An id the loader computes
    # hashes its time, so it cannot come with two; a row written by another tool with an id
    # of its own and another time is a different key (the docs say so).
    ensure_partitions(engine, schema="drip", months=[date(2026, 10, 1), date(2026, 12, 1)])
    insert = sa.text(
        "INSERT INTO drip.tracks (id, event, event_text, original_timestamp, timestamp, "
        "received_at, sent_at) VALUES ('other-tool-1', 'x', 'X', :t, :t, now(), now())"
    )
    with engine.begin() as conn:
        conn.execute(insert, {"t": "2026-10-02T00:00:00Z"})
        conn.execute(insert, {"t": "2026-12-02T00:00:00Z"})
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(insert, {"t": "2026-12-02T00:00:00Z"})


def _plan(engine: Engine, sql: str, **params: object) -> str:
    with engine.connect() as conn:
        conn.execute(sa.text("SET search_path = drip"))
        return "\n".join(conn.execute(sa.text(f"EXPLAIN (COSTS OFF) {sql}"), params).scalars())


def test_queries_on_the_event_time_read_only_its_months(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    load_lines(settings, tmp_path, spread(3000, 41, datetime(2026, 1, 1, tzinfo=UTC), 180))
    assert len(partition_months(engine, schema="drip")["tracks"]) == 6
    with engine.connect() as conn:
        conn.execute(sa.text("ANALYZE"))
    march = "'2026-03-01T00:00:00Z' AND \"timestamp\" < '2026-04-01T00:00:00Z'"
    for table in ("tracks", "email_opened", "email_delivered"):
        plan = _plan(engine, f'SELECT count(*) FROM {table} WHERE "timestamp" >= {march}')
        assert f"{table}_p202603" in plan
        assert [m for m in ("202601", "202602", "202604", "202605", "202606") if m in plan] == []
    plan = _plan(
        engine,
        "SELECT count(*) FROM _raw_events WHERE occurred_at >= '2026-05-10T00:00:00Z' "
        "AND occurred_at < '2026-06-10T00:00:00Z'",
    )
    assert "_raw_events_p202605" in plan and "_raw_events_p202606" in plan
    assert "_raw_events_p202604" not in plan
    # the probe for landed keys goes to each key's month only, pruned as it runs
    keys = rows(
        engine,
        "SELECT _event_key, occurred_at FROM drip._raw_events_p202604 ORDER BY 1 LIMIT 50",
    )
    with engine.connect() as conn:
        conn.execute(sa.text("SET search_path = drip"))
        analyzed = conn.execute(
            sa.text(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {read_sql('land/known_keys.sql')}"),
            {
                "keys": ",".join(k["_event_key"] for k in keys),
                "times": ",".join(k["occurred_at"].isoformat() for k in keys),
            },
        ).scalars()
        plan = list(analyzed)
        probes = [line for line in plan if "Scan" in line and "_raw_events_p" in line]
    executed = [p for p in probes if "never executed" not in p]
    assert len(probes) == 6
    assert len(executed) == 1 and "_raw_events_p202604" in executed[0]
    assert "loops=50" in executed[0]


def test_a_partition_dropped_meanwhile_is_made_again(engine: Engine) -> None:
    october = [("f:1", body_at("2026-10-06T15:50:02Z"), 0)]
    november = [("f:2", body_at("2026-11-06T15:50:02Z"), 0)]
    limits = {"schema": "drip", "batch_size": 10, "max_record_bytes": 1 << 20}
    land_records(engine, october, load_id="a", **limits)  # type: ignore[arg-type]
    ensure_partitions(engine, schema="drip", months=[date(2026, 11, 1)])  # known here now
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE drip._raw_events_p202611, drip.tracks_p202611"))
    counts = land_records(engine, november, load_id="b", **limits)  # type: ignore[arg-type]
    assert counts.landed == 1
    assert rows(engine, "SELECT count(*) AS n FROM drip.tracks_p202611") == [{"n": 1}]
    # the webhook receiver's way: known here, gone there, made again
    ensure_partitions(engine, schema="drip", months=[date(2026, 12, 1)])
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE drip._raw_events_p202612"))
    queued = queue_records(engine, [("w:1", body_at("2026-12-06T15:50:02Z"), 0)], load_id="w")
    assert queued.landed == 1
    assert rows(engine, "SELECT count(*) AS n FROM drip._raw_events_p202612") == [{"n": 1}]


def test_a_table_in_the_way_of_a_partition_is_named(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE drip.tracks_p203001 (id text)"))
    with pytest.raises(DatabaseError) as raised:
        ensure_partitions(engine, schema="drip", months=[date(2030, 1, 17)])
    assert str(raised.value) == (
        "table drip.tracks_p203001 exists but is not a partition of drip.tracks: rename or drop "
        "it (rows of 2030-01 are stored in a partition of that name), then run again"
    )
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
        with pytest.raises(ValueError, match="outside a transaction"):
            ensure_partitions(conn, schema="drip", months=[date(2030, 2, 1)])


def _raw_keys(engine: Engine) -> list[str]:
    return [r["k"] for r in rows(engine, "SELECT _event_key AS k FROM drip._raw_events ORDER BY 1")]


def test_two_loaders_and_serve_meeting_new_months_at_once(
    db_url: str, engine: Engine, tmp_path: Path, pg: dict[str, object]
) -> None:
    # a: Jan-Feb 2024, b: Feb-Mar 2024 (February is new to both), webhooks: Mar-Apr 2024
    a = spread(4000, 51, datetime(2024, 1, 20, tzinfo=UTC), 25)
    b = spread(4000, 52, datetime(2024, 2, 20, tzinfo=UTC), 25)
    posted = spread(600, 53, datetime(2024, 3, 25, tzinfo=UTC), 15)
    files = [write_ndjson(tmp_path / "a.ndjson", a), write_ndjson(tmp_path / "b.ndjson", b)]
    env = {**os.environ, "DRIP_LOADER_DATABASE_URL": db_url, "DRIP_LOADER_BATCH_SIZE": "500"}
    with ServeProcess(db_url, tmp_path / "serve.log") as server:
        server.wait_healthy()
        loads = [
            subprocess.Popen(
                [sys.executable, "-m", "loader", "load", str(path), "--format", "json"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for path in files
        ]
        with ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(lambda body: server.post(body).status_code, posted))
        outcomes = [proc.communicate(timeout=180) for proc in loads]
        assert [proc.returncode for proc in loads] == [0, 0], outcomes
        assert set(statuses) == {200}
        deadline = time.monotonic() + 60
        while rows(engine, "SELECT count(*) AS n FROM drip._pending")[0]["n"]:
            assert time.monotonic() < deadline, "serve did not transform its events"
            time.sleep(0.1)
        assert server.stop() == 0
    assert "Traceback" not in server.output()
    # the queues are emptied as the work is done: claimed events and merged snapshots go
    queues = "SELECT (SELECT count(*) FROM drip._pending) + (SELECT count(*) FROM drip._subscriber_changes) AS n"
    assert rows(engine, queues) == [{"n": 0}]
    # serve also makes this month's and the next month's ahead of their events
    today = datetime.now(UTC).date().replace(day=1)
    ahead = [today, (today + timedelta(days=32)).replace(day=1)]
    assert partition_months(engine, schema="drip")["tracks"] == [
        date(2024, 1, 1),
        date(2024, 2, 1),
        date(2024, 3, 1),
        date(2024, 4, 1),
        *ahead,
    ]
    # the same events and tables as one clean load of everything
    clean_url = fresh_database(str(pg["url"]), "partitions_clean", template=TEMPLATE)
    everything = write_ndjson(tmp_path / "all.ndjson", a + b + posted)
    subprocess.run(
        [sys.executable, "-m", "loader", "load", str(everything)],
        env={**os.environ, "DRIP_LOADER_DATABASE_URL": clean_url},
        check=True,
        capture_output=True,
    )
    clean = sa.create_engine(clean_url.replace("postgresql://", "postgresql+psycopg2://"))
    try:
        assert _raw_keys(engine) == _raw_keys(clean)
        got, want = snapshot(engine), snapshot(clean)
        assert {t: got[t] for t in TABLES} == {t: want[t] for t in TABLES}
    finally:
        clean.dispose()
    reports = [json.loads(out) for out, _ in outcomes]
    assert [r["rejected"] for r in reports] == [0, 0]
