"""``drip-loader prune``'s library: old runs and old sent outbox rows go, in batches;
the newest run of each command, runs still going and the outbox's unfinished work stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loader.config import Settings, format_duration, parse_duration
from loader.errors import ConfigError
from loader.warehouse.retention import prune
from loader.warehouse.runs import start_run
from loader.warehouse.status import warehouse_status


def add_runs(engine: Engine, rows: list[tuple[str, str, str, int]]) -> None:
    """``(load_id, command, status, days ago)`` rows in ``_runs``."""
    with engine.begin() as conn:
        for load_id, command, status, days in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO drip._runs (load_id, command, status, started_at) "
                    "VALUES (:id, :command, :status, now() - make_interval(days => :days))"
                ),
                {"id": load_id, "command": command, "status": status, "days": days},
            )


def run_ids(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT load_id FROM drip._runs")).scalars())


def add_outbox(engine: Engine, rows: list[tuple[str, str, int | None]]) -> None:
    """``(id, status, days since sent)`` rows in ``_outbox``."""
    with engine.begin() as conn:
        for event_id, status, days in rows:
            conn.execute(
                sa.text(
                    'INSERT INTO drip._outbox (id, "timestamp", status, sent_at) VALUES (:id, now(), :status, '
                    "now() - make_interval(days => :days))"
                ),
                {"id": event_id, "status": status, "days": days},
            )


def test_prune_deletes_old_runs_but_the_newest_of_each_command_and_live_ones(
    engine: Engine,
) -> None:
    add_runs(
        engine,
        [
            ("load-new", "load", "completed", 1),
            ("load-old", "load", "completed", 100),
            ("load-older", "load", "failed", 200),
            ("sync-only", "drip sync", "completed", 300),  # the last sync: status shows it
            ("serve-old", "serve", "running", 120),  # process gone: deleted
            ("serve-new", "serve", "completed", 10),
        ],
    )
    live = start_run(engine, schema="drip", load_id="load-live", command="load", sources=None)
    with engine.begin() as conn:  # a run still going, started long ago
        conn.execute(
            sa.text("UPDATE drip._runs SET started_at = now() - interval '400 days' "
                    "WHERE load_id = 'load-live'")
        )  # fmt: skip
    try:
        dry = prune(
            engine, schema="drip", runs_older_than=timedelta(days=90),
            outbox_older_than=timedelta(days=7), dry_run=True,
        )  # fmt: skip
        assert dry.runs == 3 and len(run_ids(engine)) == 7
        report = prune(
            engine, schema="drip", runs_older_than=timedelta(days=90),
            outbox_older_than=timedelta(days=7),
        )  # fmt: skip
    finally:
        live.finish({})

    assert report.runs == 3
    assert run_ids(engine) == {"load-new", "sync-only", "serve-new", "load-live"}
    assert (
        warehouse_status(engine, schema="drip").as_dict()["drip_sync"]["last"]["status"]
        == "completed"
    )


def test_prune_applies_the_outbox_window_and_keeps_unfinished_work(engine: Engine) -> None:
    add_outbox(
        engine,
        [
            ("drip-a", "sent", 30),
            ("drip-b", "sent", 8),
            ("drip-c", "sent", 1),
            ("drip-d", "pending", None),
            ("drip-e", "failed", None),
        ],
    )
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO drip._forwarding DEFAULT VALUES"))

    report = prune(
        engine, schema="drip", runs_older_than=timedelta(days=90),
        outbox_older_than=timedelta(days=7),
    )  # fmt: skip

    with engine.connect() as conn:
        left = set(conn.execute(sa.text("SELECT id FROM drip._outbox")).scalars())
        pruned = conn.execute(sa.text("SELECT pruned_sent FROM drip._forwarding")).scalar_one()
    assert (report.outbox, pruned) == (2, 2)
    assert left == {"drip-c", "drip-d", "drip-e"}
    lines = report.lines()
    assert lines[0].startswith("Deleted 0 run(s) from drip._runs started before ")
    assert lines[0].endswith(" UTC (older than 90d; the newest run of each command is kept).")
    assert lines[1].startswith("Deleted 2 sent row(s) from drip._outbox sent before ")
    assert lines[1].endswith(" UTC (older than 1w).")


def test_prune_refuses_a_schema_behind_head(empty_engine: Engine) -> None:
    with pytest.raises(ConfigError, match="run `drip-loader migrate` first"):
        prune(
            empty_engine, schema="drip", runs_older_than=timedelta(days=1),
            outbox_older_than=timedelta(days=1),
        )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("7d", timedelta(days=7)),
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("2w", timedelta(weeks=2)),
        (" 45S ", timedelta(seconds=45)),
        ("0", timedelta(0)),
    ],
)
def test_durations_read_as_a_number_and_a_unit(text: str, value: timedelta) -> None:
    assert parse_duration(text, what="--x") == value
    assert parse_duration(format_duration(value), what="--x") == value


@pytest.mark.parametrize("text", ["7", "seven days", "-1d", "1.5d", "3y", ""])
def test_a_bad_duration_says_what_it_expects(text: str) -> None:
    with pytest.raises(
        ConfigError, match=r"--x must be a whole number and a unit \(s, m, h, d or w\)"
    ):
        parse_duration(text, what="--x")


def test_retention_windows_come_from_the_environment_and_options_win() -> None:
    env = {"DRIP_LOADER_OUTBOX_RETENTION": "3d", "DRIP_LOADER_RUNS_RETENTION": "30d"}
    settings = Settings.from_env(env)
    assert (settings.outbox_retention, settings.runs_retention) == (
        timedelta(days=3),
        timedelta(days=30),
    )
    assert Settings.from_env(
        env, outbox_retention=timedelta(hours=1)
    ).outbox_retention == timedelta(hours=1)
    assert Settings.from_env({}).outbox_retention == timedelta(days=7)
    with pytest.raises(ConfigError, match="DRIP_LOADER_OUTBOX_RETENTION must be a whole number"):
        Settings.from_env({"DRIP_LOADER_OUTBOX_RETENTION": "a week"})
