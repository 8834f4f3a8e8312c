"""``drip-loader dbt-sources``: a dbt sources file generated from the tables, proven with real dbt.

The first tests read the generated structure; the last ones write it into a tiny dbt project
(one model on a source) and run the real ``dbt build`` and ``dbt source freshness`` on a
warehouse loaded by the loader: green on a healthy warehouse, red on a broken or stale one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine, make_url
from typer.testing import CliRunner

from loader.analyst.dbt_sources import (
    ERROR_AFTER_HOURS,
    FRESHNESS_FILTER,
    VIEW_COLUMNS,
    sources_document,
    sources_yaml,
)
from loader.cli.app import app
from loader.config import Settings
from loader.domain import registry
from loader.domain.drip_resources import RESOURCES
from loader.pipeline.import_segment import import_segment
from loader.pipeline.run import run_pipeline
from loader.warehouse.tables import build_metadata
from tests.analyst_cases import BATCH_1, BATCH_2, write_ndjson
from tests.support.segment_schema import create_segment_schema, segment_rows

COLLECTIONS = tuple(c.name for c in registry.COLLECTIONS)
"""Every collection, on or off: the file declares them all (their tables exist either way)."""
DRIP_TABLES = tuple(r.table for r in RESOURCES.values())
"""What ``drip sync`` fills: in the file too, with their key tested."""
VIEWS = (
    "campaign_unsubscribes",
    "daily_email_activity",
    "email_performance",
    "subscribers_webhook_and_api",
)
DBT = Path(sys.executable).parent / "dbt"


def tables(schema: str = "drip") -> dict[str, dict[str, Any]]:
    (source,) = sources_document(schema=schema)["sources"]
    return {t["name"]: t for t in source["tables"]}


def column_tests(table: dict[str, Any]) -> dict[str, list[Any]]:
    return {c["name"]: c.get("data_tests", []) for c in table["columns"]}


def test_declares_every_analyst_facing_table_and_view_and_no_bookkeeping_table() -> None:
    assert list(tables()) == [*COLLECTIONS, "tracks", "subscribers", *DRIP_TABLES, *VIEWS]


def test_each_table_has_the_columns_of_the_warehouse_each_described() -> None:
    metadata = build_metadata("drip")
    for name, table in tables().items():
        if name in VIEWS:
            continue
        columns = metadata.tables[f"drip.{name}"].columns.keys()
        if name in DRIP_TABLES:  # the key and bookkeeping columns: the API's fields are Drip's
            resource = next(r for r in RESOURCES.values() if r.table == name)
            columns = [resource.key, "raw", "synced_at", "deleted_at"]
        assert [c["name"] for c in table["columns"]] == columns
        assert table["description"]
        assert all(c["description"] for c in table["columns"]), name


def test_view_columns_are_those_of_the_migrated_views(engine: Engine) -> None:
    with engine.connect() as conn:
        for view in VIEWS:
            columns = conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'drip' AND table_name = :v ORDER BY ordinal_position"
                ),
                {"v": view},
            ).scalars()
            assert list(columns) == list(VIEW_COLUMNS[view]), view
    assert all(tables()[v]["description"] for v in VIEWS)


def test_collection_tables_test_id_event_times_and_their_row_in_tracks() -> None:
    for name in COLLECTIONS:
        tests = column_tests(tables()[name])
        assert tests["id"] == [
            "unique",
            "not_null",
            {"relationships": {"arguments": {"to": "source('drip', 'tracks')", "field": "id"}}},
        ]
        assert tests["event"] == [
            "not_null",
            {"accepted_values": {"arguments": {"values": [name]}}},
        ]
        assert tests["timestamp"] == ["not_null"]
        assert tests["received_at"] == ["not_null"]


def test_tracks_accepts_every_collection_and_has_the_freshness_block() -> None:
    tracks = tables()["tracks"]
    tests = column_tests(tracks)
    assert tests["id"] == ["unique", "not_null"]
    assert tests["event"][1] == {"accepted_values": {"arguments": {"values": list(COLLECTIONS)}}}
    assert tracks["config"] == {
        "loaded_at_field": "received_at",
        "freshness": {
            "warn_after": {"count": 12, "period": "hour"},
            "error_after": {"count": ERROR_AFTER_HOURS, "period": "hour"},
            "filter": FRESHNESS_FILTER,
        },
    }
    assert all("config" not in t for name, t in tables().items() if name != "tracks")


def test_the_yaml_is_the_document_and_the_same_bytes_every_time() -> None:
    text = sources_yaml(schema="drip")

    assert yaml.safe_load(text) == sources_document(schema="drip")
    assert sources_yaml(schema="drip") == text


def test_another_schema_names_its_source_after_it() -> None:
    (source,) = sources_document(schema="drip_eu")["sources"]

    assert (source["name"], source["schema"]) == ("drip_eu", "drip_eu")
    relationships = column_tests(tables("drip_eu")["email_opened"])["id"][2]
    assert relationships["relationships"]["arguments"]["to"] == "source('drip_eu', 'tracks')"


def test_cli_prints_the_file_or_writes_it(tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(app, ["dbt-sources", "--schema", "drip_eu"])
    out = tmp_path / "sources.yml"
    written = runner.invoke(app, ["dbt-sources", "--out", str(out)])

    assert (printed.exit_code, printed.stdout) == (0, sources_yaml(schema="drip_eu"))
    assert written.exit_code == 0
    assert out.read_text(encoding="utf-8") == sources_yaml(schema="drip")
    assert f"to {out}" in written.stderr


def test_cli_has_help() -> None:
    result = CliRunner().invoke(app, ["dbt-sources", "--help"])

    assert result.exit_code == 0
    assert "--out" in result.output


def test_cli_refuses_a_bad_schema_and_an_unwritable_file(tmp_path: Path) -> None:
    runner = CliRunner()
    bad_schema = runner.invoke(app, ["dbt-sources", "--schema", "Drip"])
    bad_file = runner.invoke(app, ["dbt-sources", "--out", str(tmp_path / "missing" / "s.yml")])

    assert bad_schema.exit_code == 1
    assert bad_schema.stderr.startswith("Error: invalid schema name 'Drip'")
    assert bad_file.exit_code == 1
    assert bad_file.stderr.startswith("Error: cannot write ")


# Real dbt ---------------------------------------------------------------------------------

PROFILE = """\
drip_loader_test:
  target: test
  outputs:
    test:
      type: postgres
      host: "{{ env_var('DRIP_TEST_PGHOST') }}"
      port: "{{ env_var('DRIP_TEST_PGPORT') | as_number }}"
      user: "{{ env_var('DRIP_TEST_PGUSER') }}"
      password: "{{ env_var('DRIP_TEST_PGPASSWORD') }}"
      dbname: "{{ env_var('DRIP_TEST_PGDATABASE') }}"
      schema: analytics
      threads: 2
"""
PROJECT = """\
name: drip_loader_test
version: "1.0"
config-version: 2
profile: drip_loader_test
flags:
  send_anonymous_usage_stats: false
  version_check: false
"""
MODEL = """\
select email_id, count(*) as opens
from {{ source('drip', 'email_opened') }}
group by email_id
"""


@pytest.fixture(scope="module")
def dbt_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dbt project of one model on the generated sources (one per module: dbt parses once)."""
    project = tmp_path_factory.mktemp("dbt")
    (project / "models").mkdir()
    (project / "dbt_project.yml").write_text(PROJECT)
    (project / "profiles.yml").write_text(PROFILE)
    (project / "models" / "opens_per_email.sql").write_text(MODEL)
    (project / "models" / "drip_sources.yml").write_text(sources_yaml(schema="drip"))
    return project


@pytest.fixture
def loaded(settings: Settings, tmp_path: Path) -> str:
    """The hand-computed analyst dataset, loaded by the loader; returns the database URL."""
    run_pipeline(settings, [str(write_ndjson(tmp_path / "b1.ndjson", BATCH_1))])
    run_pipeline(settings, [str(write_ndjson(tmp_path / "b2.ndjson", BATCH_2))])
    assert settings.database_url is not None
    return settings.database_url


def dbt(project: Path, url: str, *args: str) -> tuple[int, str]:
    """Run the dbt of this venv on the database of ``url``; exit code and output."""
    parts = make_url(url)
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(project),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",
        "DRIP_TEST_PGHOST": parts.host or "localhost",
        "DRIP_TEST_PGPORT": str(parts.port or 5432),
        "DRIP_TEST_PGUSER": parts.username or "postgres",
        "DRIP_TEST_PGPASSWORD": parts.password or "",
        "DRIP_TEST_PGDATABASE": parts.database or "",
    }
    done = subprocess.run(
        [str(DBT), "--no-use-colors", *args, "--project-dir", str(project)],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, done.stdout + done.stderr


def execute(engine: Engine, sql: str) -> int:
    with engine.begin() as conn:
        return conn.execute(sa.text(sql)).rowcount


def assert_no_warning(output: str) -> None:
    """No deprecation (dbt 1.10+ syntax) and no other warning in a dbt run's output."""
    assert "deprecat" not in output.lower(), output
    assert "[WARNING]" not in output, output


def test_dbt_builds_green_and_finds_the_sources_fresh(dbt_project: Path, loaded: str) -> None:
    code, output = dbt(dbt_project, loaded, "build")
    assert code == 0, output
    assert "source_relationships_drip_email_opened_id__id__source_drip_tracks_" in output
    assert "source_accepted_values_drip_tracks_event" in output
    assert_no_warning(output)

    code, output = dbt(dbt_project, loaded, "source", "freshness")
    assert code == 0, output
    assert "PASS freshness of drip.tracks" in output, output
    assert_no_warning(output)


def test_dbt_builds_green_with_history_imported_from_segment(
    dbt_project: Path, loaded: str, engine: Engine
) -> None:
    # Segment's rows keep their ids, some lack their tracks row in Segment's schema (the
    # import makes it), some have no event name: every source test still holds.
    create_segment_schema(
        engine, "website", segment_rows(per_table=30, seed=4, end=datetime(2026, 9, 1, tzinfo=UTC))
    )
    report = import_segment(engine, schema="drip", source_schema="website")
    assert sum(t.tracks_made for t in report.tables) == 12

    code, output = dbt(dbt_project, loaded, "build")

    assert code == 0, output
    assert "source_relationships_drip_email_opened_id__id__source_drip_tracks_" in output
    assert_no_warning(output)


def test_dbt_build_fails_on_a_collection_row_missing_from_tracks(
    dbt_project: Path, loaded: str, engine: Engine
) -> None:
    deleted = execute(
        engine, "DELETE FROM drip.tracks WHERE id = (SELECT min(id) FROM drip.email_opened)"
    )
    assert deleted == 1

    code, output = dbt(dbt_project, loaded, "build")

    assert code == 1
    assert "FAIL 1 source_relationships_drip_email_opened_id__id__source_drip_tracks_" in output
    assert "ERROR=1 " in output  # the one broken test, and nothing else


def test_dbt_freshness_errors_when_nothing_arrived_for_a_day(
    dbt_project: Path, loaded: str, engine: Engine
) -> None:
    execute(engine, "UPDATE drip.tracks SET received_at = received_at - interval '30 hours'")
    code, output = dbt(dbt_project, loaded, "source", "freshness")
    assert code == 1
    assert "ERROR STALE freshness of drip.tracks" in output, output

    execute(engine, "UPDATE drip.tracks SET received_at = received_at - interval '300 days'")
    code, output = dbt(dbt_project, loaded, "source", "freshness")
    assert code == 1  # outside the filter's window: no row, still stale, never an error of dbt's
    assert "ERROR STALE freshness of drip.tracks" in output, output
