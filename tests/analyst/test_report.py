"""``drip-loader report``: the analyst views as a table, CSV or JSON, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loader.cli.app import app
from loader.config import Settings
from loader.pipeline.run import run_pipeline
from tests.analyst_cases import BATCH_1, BATCH_2, write_ndjson

runner = CliRunner()


@pytest.fixture
def loaded(settings: Settings, tmp_path: Path) -> str:
    """The hand-computed dataset, both loads; returns the database URL."""
    run_pipeline(settings, [str(write_ndjson(tmp_path / "b1.ndjson", BATCH_1))])
    run_pipeline(settings, [str(write_ndjson(tmp_path / "b2.ndjson", BATCH_2))])
    assert settings.database_url is not None
    return settings.database_url


def report(url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["report", *args, "--database-url", url])
    return result.exit_code, result.stdout, result.stderr


def test_email_performance_csv(loaded: str) -> None:
    code, out, _ = report(loaded, "email-performance", "--format", "csv")

    assert code == 0
    assert out == (
        "email_id,email_subject,delivered,opens,unique_opens,clicks,unique_clicks,bounces,"
        "spam_reports,open_rate,click_rate,click_to_open_rate,first_event_at,last_event_at\n"
        "5001,Welcome!,3,4,2,2,2,1,1,0.6667,0.6667,1.0,2026-10-05T09:00:00Z,2026-10-07T20:00:00Z\n"
        "5002,Tips,1,2,2,2,2,0,0,2.0,2.0,1.0,2026-10-06T13:00:00Z,2026-10-07T08:00:00Z\n"
    )


def test_email_performance_json_has_null_rates_without_deliveries(
    settings: Settings, tmp_path: Path
) -> None:
    run_pipeline(settings, [str(write_ndjson(tmp_path / "b1.ndjson", BATCH_1))])
    assert settings.database_url is not None
    code, out, _ = report(settings.database_url, "email-performance", "--format", "json")

    assert code == 0
    assert json.loads(out) == [
        {
            "email_id": "5001",
            "email_subject": "Welcome!",
            "delivered": 3,
            "opens": 4,
            "unique_opens": 2,
            "clicks": 1,
            "unique_clicks": 1,
            "bounces": 1,
            "spam_reports": 1,
            "open_rate": 0.6667,
            "click_rate": 0.3333,
            "click_to_open_rate": 0.5,
            "first_event_at": "2026-10-05T09:00:00Z",
            "last_event_at": "2026-10-06T09:00:00Z",
        },
        {
            "email_id": "5002",
            "email_subject": "Tips",
            "delivered": 0,
            "opens": 1,
            "unique_opens": 1,
            "clicks": 2,
            "unique_clicks": 2,
            "bounces": 0,
            "spam_reports": 0,
            "open_rate": None,
            "click_rate": None,
            "click_to_open_rate": 2.0,
            "first_event_at": "2026-10-06T13:59:00Z",
            "last_event_at": "2026-10-06T15:00:00Z",
        },
    ]


def test_unsubscribes_json(loaded: str) -> None:
    code, out, _ = report(loaded, "unsubscribes", "--format", "json")

    assert code == 0
    assert json.loads(out) == [
        {
            "campaign_id": "4455667",
            "campaign_name": "Onboarding course",
            "unsubscribes": 2,
            "first_at": "2026-10-06T22:30:00Z",
            "last_at": "2026-10-07T10:00:00Z",
        },
        {
            "campaign_id": "7788",
            "campaign_name": "Newsletter",
            "unsubscribes": 1,
            "first_at": "2026-10-07T15:00:00Z",
            "last_at": "2026-10-07T15:00:00Z",
        },
        {
            "campaign_id": None,  # unsubscribe from everything
            "campaign_name": None,
            "unsubscribes": 1,
            "first_at": "2026-10-08T09:00:00Z",
            "last_at": "2026-10-08T09:00:00Z",
        },
    ]


def test_daily_csv_for_one_utc_day(loaded: str) -> None:
    code, out, _ = report(
        loaded, "daily", "--since", "2026-10-06", "--until", "2026-10-07", "--format", "csv"
    )

    assert code == 0
    assert out == (
        "day,event,events,unique_people\n"
        "2026-10-06,email_delivered,1,1\n"
        "2026-10-06,email_link_clicked,2,2\n"
        "2026-10-06,email_marked_as_spam,1,1\n"
        "2026-10-06,email_opened,2,2\n"
        "2026-10-06,email_unsubscribed,1,1\n"
    )


def test_window_selects_rows_whose_activity_overlaps_it(loaded: str) -> None:
    # 5001 runs 10-05 09:00 .. 10-07 20:00, 5002 10-06 13:00 .. 10-07 08:00
    _, out, _ = report(
        loaded, "email-performance", "--until", "2026-10-06T13:00:00Z", "--format", "json"
    )
    assert [r["email_id"] for r in json.loads(out)] == ["5001"]
    _, out, _ = report(
        loaded, "email-performance", "--since", "2026-10-07T09:00+02:00", "--format", "json"
    )
    assert [r["email_id"] for r in json.loads(out)] == ["5001", "5002"]
    _, out, _ = report(loaded, "unsubscribes", "--since", "2026-10-07T12:00:00", "--format", "json")
    assert [r["campaign_id"] for r in json.loads(out)] == ["7788", None]


def test_table_for_a_terminal(loaded: str) -> None:
    code, out, _ = report(loaded, "unsubscribes")

    assert code == 0
    # text to the left, numbers to the right, NULL blank
    assert out.splitlines() == [
        "campaign_id  campaign_name      unsubscribes  first_at              last_at",
        "4455667      Onboarding course             2  2026-10-06T22:30:00Z  2026-10-07T10:00:00Z",
        "7788         Newsletter                    1  2026-10-07T15:00:00Z  2026-10-07T15:00:00Z",
        "                                           1  2026-10-08T09:00:00Z  2026-10-08T09:00:00Z",
    ]


def test_out_writes_the_file(loaded: str, tmp_path: Path) -> None:
    target = tmp_path / "daily.csv"
    code, out, err = report(loaded, "daily", "--format", "csv", "--out", str(target))

    assert (code, out) == (0, "")
    assert err == f"Wrote 13 row(s) to {target}\n"
    lines = target.read_text().splitlines()
    assert (len(lines), lines[0], lines[-1]) == (
        14,
        "day,event,events,unique_people",
        "2026-10-08,email_unsubscribed,1,1",
    )


def test_empty_warehouse_prints_no_rows(db_url: str) -> None:
    assert report(db_url, "daily") == (0, "(no rows)\n", "")
    assert report(db_url, "daily", "--format", "csv") == (0, "day,event,events,unique_people\n", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["daily", "--since", "yesterday"],
            "Error: --since 'yesterday' is not a date or time: use 2026-10-01 or "
            "2026-10-01T12:00:00Z\n",
        ),
        (
            ["daily", "--since", "2026-10-07", "--until", "2026-10-07"],
            "Error: --until (2026-10-07T00:00:00+00:00) must be after --since "
            "(2026-10-07T00:00:00+00:00)\n",
        ),
    ],
)
def test_bad_window(db_url: str, args: list[str], message: str) -> None:
    code, out, err = report(db_url, *args)
    assert (code, out, err) == (1, "", message)


def test_unmigrated_schema_says_to_migrate(empty_db_url: str) -> None:
    code, _, err = report(empty_db_url, "email-performance")

    assert code == 1
    assert err == (
        "Error: schema 'drip' has no view email_performance: run `drip-loader migrate` first\n"
    )


def test_unknown_report_is_a_usage_error(db_url: str) -> None:
    code, _, err = report(db_url, "weekly")
    assert code == 2
    assert "No such command 'weekly'" in err


def test_report_lists_the_reports() -> None:
    result = runner.invoke(app, ["report", "--help"])
    assert result.exit_code == 0
    for name in ("email-performance", "daily", "unsubscribes", "attribution"):
        assert name in result.stdout


@pytest.mark.parametrize("name", ["email-performance", "daily", "unsubscribes"])
def test_each_report_has_help(name: str) -> None:
    result = runner.invoke(app, ["report", name, "--help"])
    assert result.exit_code == 0
    for option in ("--since", "--until", "--format", "--out", "--database-url", "--schema"):
        assert option in result.stdout
