"""``drip-loader rejects list | show | retry`` as a user meets them: exact output, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from loader.cli.app import app
from loader.config import Settings
from loader.warehouse import migrate
from loader.warehouse.text import utc_text
from tests.casefiles import case_bytes
from tests.support.rejects import max_depth, nested
from tests.support.warehouse import load_lines

NESTED = nested(case_bytes("email_delivered"))


def invoke(args: list[str], db_url: str, **env: str) -> Any:
    return CliRunner().invoke(app, args, env={"DRIP_LOADER_DATABASE_URL": db_url, **env})


@pytest.fixture
def three(settings: Settings, engine: Engine, tmp_path: Path) -> Path:
    """Three rejects, ids 1-3, rejected at fixed times; the second passes today's rules."""
    with max_depth(8):  # the rule of an older, stricter version
        load_lines(settings, tmp_path, [b'{"event": 7}', NESTED, b"\x1b[2Jnot json"])
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE drip._rejects SET rejected_at = timestamptz '2026-12-05 09:00:00Z' "
                "+ make_interval(mins => CAST(id AS int))"
            )
        )
    return (tmp_path / "in.ndjson").resolve()


def test_list_prints_the_newest_first_in_aligned_columns(db_url: str, three: Path) -> None:
    result = invoke(["rejects", "list"], db_url)
    assert result.exit_code == 0, result.stderr
    origin = f"{three}:1"
    assert result.stdout.splitlines() == [
        f"id  rejected at              bytes  {'origin':<{len(origin)}}  reason"
        + " " * 56
        + "body starts",
        f" 3  2026-12-05 09:03:00 UTC     12  {three}:3  not JSON: unexpected character, "
        "expected a JSON value: line…  \\x1b[2Jnot json",
        f" 2  2026-12-05 09:02:00 UTC    551  {three}:2  JSON is nested deeper than 8 levels"
        + " " * 27
        + '{"event": "subscriber.received_email", …',
        f" 1  2026-12-05 09:01:00 UTC     12  {three}:1  event must be a string, got a number"
        + " " * 26
        + '{"event": 7}',
        "3 reject(s), newest first. Read one: drip-loader rejects show ID; land those that "
        "pass now: drip-loader rejects retry ID... or --all.",
    ]


def test_list_filters_limits_and_prints_csv_and_json(db_url: str, three: Path) -> None:
    since = invoke(["rejects", "list", "--since", "2026-12-05T09:02:00Z", "--limit", "1"], db_url)
    assert since.stdout.splitlines()[1].startswith(" 3  2026-12-05 09:03:00 UTC")
    assert since.stdout.splitlines()[-1].startswith("1 of 2 reject(s), newest first.")
    csv = invoke(["rejects", "list", "--reason", "NESTED", "--format", "csv"], db_url)
    assert csv.stdout.splitlines() == [
        "id,rejected_at,origin,reason,size,head,landed_at",
        f"2,2026-12-05T09:02:00+00:00,{three}:2,JSON is nested deeper than 8 levels,"
        f'{len(NESTED)},"{{""event"": ""subscriber.received_email"", …",',
    ]
    data = json.loads(invoke(["rejects", "list", "--format", "json"], db_url).stdout)
    assert data["matching"] == 3 and [r["id"] for r in data["rejects"]] == [3, 2, 1]
    none = invoke(["rejects", "list", "--reason", "no such reason"], db_url)
    assert (none.exit_code, none.stdout) == (0, "No rejects match.\n")


def test_list_refuses_bad_options_before_the_database(three: Path) -> None:
    unreachable = "postgresql://u@127.0.0.1:1/x"
    since = invoke(["rejects", "list", "--since", "last week"], unreachable)
    assert (since.exit_code, since.stderr) == (
        1,
        "Error: --since 'last week' is not a date or time: use 2026-10-01 or "
        "2026-10-01T12:00:00Z\n",
    )
    limit = invoke(["rejects", "list", "--limit", "0"], unreachable)
    assert (limit.exit_code, limit.stderr) == (1, "Error: --limit must be at least 1, not 0\n")


def test_show_prints_the_body_its_origin_and_reason(db_url: str, three: Path) -> None:
    result = invoke(["rejects", "show", "1"], db_url)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Reject 1: rejected"
    assert lines[1].startswith("  rejected at  2026-12-05 09:01:00 UTC by run ")
    assert lines[2:5] == [
        f"  origin       {three}:1",
        "  reason       event must be a string, got a number",
        "  size         12 bytes",
    ]
    assert lines[6:] == ["Body (JSON, pretty-printed):", "{", '  "event": 7', "}"]
    raw = invoke(["rejects", "show", "3"], db_url).stdout.splitlines()
    assert raw[-2:] == ["Body (as received):", "\\x1b[2Jnot json"]


def test_show_of_an_unknown_id_is_one_line_and_exit_1(db_url: str, three: Path) -> None:
    result = invoke(["rejects", "show", "42"], db_url)
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "Error: no reject with id 42 in schema 'drip': `drip-loader rejects list` shows the ids\n",
    )


def test_retry_lands_what_passes_now_and_says_so_per_reject(
    db_url: str, engine: Engine, three: Path
) -> None:
    dry = invoke(["rejects", "retry", "1", "2", "--dry-run"], db_url)
    assert dry.stdout.splitlines()[:3] == [
        "Dry run over rejects 1, 2: nothing was changed; a retry now would give:",
        "  1  still rejected: event must be a string, got a number",
        "  2  landed",
    ]
    result = invoke(["rejects", "retry", "1", "2"], db_url)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Retried rejects 1, 2 (run ")
    assert lines[1:] == [
        "  1  still rejected: event must be a string, got a number",
        "  2  landed",
        "  retried                              2",
        "  landed                               1",
        "  already in the warehouse             0",
        "  still rejected                       1",
    ]
    run_id = lines[0].removeprefix("Retried rejects 1, 2 (run ").removesuffix("):")
    again = invoke(["rejects", "retry", "2"], db_url).stdout.splitlines()
    assert again[1:3] == [
        f"  2  landed by an earlier retry: {_landed_at(engine)}, run {run_id}",
        "  retried                              0",
    ]
    assert again[-1] == "  landed by an earlier retry           1"
    shown = invoke(["rejects", "show", "2"], db_url).stdout.splitlines()
    assert shown[0] == f"Reject 2: landed {_landed_at(engine)} by retry run {run_id}"
    assert "Retries:" in shown and shown[shown.index("Retries:") + 1].endswith(
        f"  run {run_id}  landed"
    )


def _landed_at(engine: Engine) -> str:
    with engine.connect() as conn:
        at = conn.execute(sa.text("SELECT landed_at FROM drip._rejects WHERE id = 2")).scalar_one()
    return utc_text(at)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            [],
            "say which rejects to retry: their ids (`drip-loader rejects list` shows them), "
            "--all, or --since TIME",
        ),
        (["1", "--all"], "give reject ids or --all, not both"),
        (["1", "--since", "2026-12-01"], "--since chooses rejects by time: give it without ids"),
    ],
    ids=["nothing chosen", "ids and --all", "ids and --since"],
)
def test_retry_refuses_an_unclear_choice_before_the_database(args: list[str], error: str) -> None:
    result = invoke(["rejects", "retry", *args], "postgresql://u@127.0.0.1:1/x")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"Error: {error}\n")


def test_retry_of_unknown_ids_names_them_and_retries_nothing(
    db_url: str, engine: Engine, three: Path
) -> None:
    result = invoke(["rejects", "retry", "2", "7", "9"], db_url)
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: no rejects with ids 7, 9 in schema 'drip': `drip-loader rejects list` shows "
        "the ids\n",
    )
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM drip._reject_retries")).scalar() == 0


def test_rejects_commands_need_the_newest_schema(empty_db_url: str) -> None:
    result = invoke(["rejects", "list"], empty_db_url)
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: schema 'drip' is at revision none, not {migrate.HEAD}: "
        "run `drip-loader migrate` first\n",
    )
