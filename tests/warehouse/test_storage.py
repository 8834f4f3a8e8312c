"""Storage facts for ``status``: bytes per event by table, partitions by month, the oldest
raw month, archived months; each checked against what Postgres says directly."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from loader.cli.app import app
from loader.config import Settings
from loader.domain.sample import MEAN_GAP, generate_events
from loader.warehouse.status import warehouse_status
from loader.warehouse.storage import storage_summary
from tests.support.warehouse import load_lines


def spread(events: int, seed: int, start: datetime, days: int) -> list[bytes]:
    factor = timedelta(days=days) / (events * MEAN_GAP)
    return list(generate_events(events=events, seed=seed, start=start, spread=factor))


def scalar(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def test_storage_is_what_postgres_reports_per_table_and_per_month(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    load_lines(settings, tmp_path, spread(3000, 7, datetime(2026, 7, 10, tzinfo=UTC), 80))

    summary = storage_summary(engine, schema="drip")

    events = scalar(engine, "SELECT count(*) FROM drip.tracks")
    assert summary.events == events > 0
    for table in ("_raw_events", "tracks", "email_opened"):  # partitioned
        size = scalar(
            engine,
            f"SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('drip.{table}')",
        )
        rows = scalar(engine, f"SELECT count(*) FROM drip.{table}")
        assert (summary.table(table).bytes, summary.table(table).rows) == (size, rows)
        assert summary.per_event(table) == round(size / events)
    for table in ("_runs", "subscribers", "_rejects"):  # plain
        size = scalar(engine, f"SELECT pg_total_relation_size('drip.{table}')")
        rows = scalar(engine, f"SELECT count(*) FROM drip.{table}")
        assert (summary.table(table).bytes, summary.table(table).rows) == (size, rows)
        assert summary.per_event(table) == round(size / events)
    assert summary.bytes == scalar(
        engine,
        "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = 'drip' AND c.relkind = 'r'",
    )
    with engine.connect() as conn:
        per_month = dict(
            conn.execute(
                sa.text(
                    "SELECT date_trunc('month', timestamp AT TIME ZONE 'UTC')::date, count(*) "
                    "FROM drip.tracks GROUP BY 1"
                )
            ).all()
        )
        raw_oldest = conn.execute(
            sa.text("SELECT min(occurred_at) AT TIME ZONE 'UTC' FROM drip._raw_events")
        ).scalar_one()
    assert [m.month for m in summary.months] == [
        date(2026, 7, 1), date(2026, 8, 1), date(2026, 9, 1),
    ]  # fmt: skip
    assert {m.month: m.rows("tracks") for m in summary.months} == per_month
    july = summary.months[0].tables["tracks"]
    assert (july.name, july.bytes) == (
        "tracks_p202607",
        scalar(engine, "SELECT pg_total_relation_size('drip.tracks_p202607')"),
    )
    assert summary.oldest_raw_month == date(raw_oldest.year, raw_oldest.month, 1)
    assert summary.archived == []


def test_archived_months_come_from_the_ledger_and_status_shows_a_storage_section(
    settings: Settings, engine: Engine, tmp_path: Path, db_url: str
) -> None:
    load_lines(settings, tmp_path, spread(500, 3, datetime(2026, 9, 20, tzinfo=UTC), 20))
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO drip._archives (month, part, raw_file, raw_events, raw_sha256, "
                "rejects, archived_at) VALUES ('2026-06-01', 1, '/a/raw-2026-06.ndjson.gz', 1200, "
                "'ab', 0, '2026-12-01T00:00:00Z'), ('2026-07-01', 1, '/a/raw-2026-07.ndjson.gz', "
                "800, 'cd', 0, '2026-12-01T00:00:00Z')"
            )
        )

    status = warehouse_status(engine, schema="drip").as_dict()
    result = CliRunner().invoke(app, ["status", "--database-url", db_url])

    storage = status["storage"]
    assert [a["month"] for a in storage["archived"]] == ["2026-06", "2026-07"]
    assert storage["oldest_raw_month"] == "2026-09"
    assert storage["events"] == status["tables"]["tracks"]
    assert result.exit_code == 0, result.output
    section = result.output[result.output.index("Storage: ") :].splitlines()
    assert section[0].startswith("Storage: ") and section[0].endswith(
        f" all-in for {storage['events']:,} events ({storage['bytes_per_event']:,} bytes per event)"
    )
    assert "    2026-09  raw " in result.output and "    2026-10  raw " in result.output
    assert section[-2:] == [
        "  oldest raw month: 2026-09",
        "  archived: 2 month(s), 2026-06 to 2026-07: 2,000 raw events in files",
    ]
