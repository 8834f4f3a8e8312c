"""deploy/postgres: the whole pipeline runs as the loader role roles.sql makes, with exactly
its privileges (not a superuser); the analyst role reads every table and view, later ones
too, and writes nothing; adopt.sql hands an existing warehouse to the loader role."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import psycopg2.errors
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loader.domain.sample import generate_events
from loader.warehouse import migrate
from tests.casefiles import case_bytes
from tests.deploy.conftest import Warehouse, read_shipped, run_cli
from tests.deploy.units import REPO
from tests.support.fake_drip import TOKEN as DRIP_TOKEN
from tests.support.fake_drip import FakeDrip
from tests.support.segment_sink import SegmentSink
from tests.support.serve import ServeProcess
from tests.support.warehouse import one, rows, write_ndjson

OPERATORS = REPO / "docs" / "operators.md"


def doc_sql(containing: str) -> str:
    """The one ```sql block of docs/operators.md that contains ``containing``."""
    blocks = re.findall(r"```sql\n(.*?)```", OPERATORS.read_text(), re.S)
    (found,) = [b for b in blocks if containing in b]
    return found


def _scalar(engine: Engine, sql: str, **params: object) -> object:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def _privileges_of(warehouse: Warehouse, role: str) -> dict[str, object]:
    admin = warehouse.engine()
    try:
        attributes = one(
            admin,
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls "
            "FROM pg_roles WHERE rolname = :role",
            role=role,
        )
        member_of = rows(
            admin,
            "SELECT roleid::regrole::text AS role FROM pg_auth_members "
            "WHERE member = to_regrole(:role)",
            role=role,
        )
        database = rows(
            admin,
            "SELECT a.privilege_type, a.grantee FROM pg_database d, aclexplode(d.datacl) a "
            "WHERE d.datname = current_database() "
            "AND a.grantee IN (to_regrole(:role), 0) ORDER BY 1",
            role=role,
        )
        schemas = rows(
            admin,
            "SELECT nspname FROM pg_namespace WHERE nspowner = to_regrole(:role)",
            role=role,
        )
    finally:
        admin.dispose()
    return {
        "attributes": attributes,
        "member_of": member_of,
        "database": [r["privilege_type"] for r in database],
        "public_on_database": [r for r in database if r["grantee"] == 0],
        "owns": [r["nspname"] for r in schemas],
    }


def test_the_pipeline_runs_as_the_loader_role_with_exactly_its_privileges(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    assert _privileges_of(warehouse, warehouse.loader) == {
        "attributes": dict.fromkeys(
            ("rolsuper", "rolcreatedb", "rolcreaterole", "rolreplication", "rolbypassrls"), False
        ),
        "member_of": [],
        "database": ["CONNECT", "TEMPORARY"],
        "public_on_database": [],
        "owns": ["drip"],
    }
    url = warehouse.loader_url
    cli = lambda *args, **env: run_cli(list(args), url=url, env=env, cwd=tmp_path)  # noqa: E731

    assert cli("migrate").strip() == f"Schema 'drip' is at revision {migrate.HEAD}."
    events = write_ndjson(tmp_path / "events.ndjson", generate_events(events=2000, seed=11))
    loaded = json.loads(cli("load", str(events), "--format", "json"))
    assert loaded["landed"] > 0 and loaded["rejected"] == 0

    engine = warehouse.engine(warehouse.loader)
    try:
        tracks = _scalar(engine, "SELECT count(*) FROM drip.tracks")
        with ServeProcess(url, tmp_path / "serve.log") as serve:
            serve.wait_healthy()
            assert serve.post(case_bytes("email_opened")).status_code == 200
            assert serve.post(b"not json").status_code == 400
            deadline = time.monotonic() + 30
            while _scalar(engine, "SELECT count(*) FROM drip.tracks") == tracks:
                assert time.monotonic() < deadline, serve.output()
                time.sleep(0.1)
            assert serve.stop() == 0, serve.output()

        assert "Turned on: subscriber_applied_tag" in cli(
            "collections", "enable", "subscriber_applied_tag"
        )

        with SegmentSink(write_key="wk") as sink:
            cli("emit", SEGMENT_WRITE_KEY="wk", DRIP_LOADER_SEGMENT_HOST=sink.url)
            assert len(sink.messages) == _scalar(engine, "SELECT count(*) FROM drip.tracks")
        assert _scalar(engine, "SELECT count(*) FROM drip._outbox WHERE status <> 'sent'") == 0

        performance = json.loads(cli("report", "email-performance", "--format", "json"))
        assert performance and all(r["delivered"] >= 0 for r in performance)
        cli("report", "daily")
        cli("report", "unsubscribes")

        # attribution reads a Segment source of the admin's, granted as docs/operators.md says
        warehouse.psql(
            "CREATE SCHEMA website;\n"
            "CREATE TABLE website.order_completed (timestamp timestamptz, user_id text,\n"
            "    anonymous_id text, context_traits_email text, revenue numeric);\n"
            "INSERT INTO website.order_completed\n"
            "    SELECT timestamp + interval '1 hour', user_id, anonymous_id, NULL, 10\n"
            "    FROM drip.email_link_clicked LIMIT 5;\n"
        )
        warehouse.psql(doc_sql("SCHEMA website"))
        attribution = cli(
            "report", "attribution", "--conversions", "website.order_completed",
            "--value-column", "revenue", "--format", "json",
        )  # fmt: skip
        assert sum(r["conversions"] for r in json.loads(attribution)) == 5

        with FakeDrip() as drip:
            cli(
                "drip",
                "sync",
                DRIP_LOADER_DRIP_API_TOKEN=DRIP_TOKEN,
                DRIP_LOADER_DRIP_API_URL=drip.url,
            )
        assert _scalar(engine, "SELECT count(*) FROM drip.drip_subscribers") == 2100

        rebuilt = cli("rebuild")
        assert rebuilt.startswith("Rebuilt ") and " from " in rebuilt
        cli("dbt-sources", "--out", str(tmp_path / "sources.yml"))
        assert cli("sql", "SELECT count(*) AS n FROM tracks").strip()
        status = cli("status")
        assert f"at revision {migrate.HEAD} (head {migrate.HEAD})" in status
        assert "completed" in status
        assert _scalar(engine, "SELECT count(*) FROM drip._rejects") == 1
    finally:
        engine.dispose()
    # nothing above needed more than roles.sql gave
    assert _privileges_of(warehouse, warehouse.loader)["database"] == ["CONNECT", "TEMPORARY"]


def _relations(engine: Engine) -> list[str]:
    found = rows(
        engine,
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'drip'::regnamespace "
        "AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY 1",
    )
    return [r["relname"] for r in found]


def test_the_analyst_reads_every_table_and_view_later_ones_too_and_writes_nothing(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    run_cli(["migrate"], url=warehouse.loader_url)
    events = write_ndjson(tmp_path / "events.ndjson", generate_events(events=300, seed=5))
    run_cli(["load", str(events)], url=warehouse.loader_url)
    # after the grants, the loader creates a partitioned table and a month's partition (as a
    # new revision or an on-demand partition would)
    warehouse.psql(
        "CREATE TABLE drip.later (month date NOT NULL, n int) PARTITION BY RANGE (month);\n"
        "CREATE TABLE drip.later_2027_01 PARTITION OF drip.later\n"
        "    FOR VALUES FROM ('2027-01-01') TO ('2027-02-01');\n"
        "INSERT INTO drip.later VALUES ('2027-01-05', 1);\n",
        as_url=warehouse.loader_url,
    )
    analyst = warehouse.engine(warehouse.analyst)
    try:
        relations = _relations(analyst)
        assert {"tracks", "email_performance", "later", "later_2027_01", "_raw_events"} <= set(
            relations
        )
        with analyst.connect() as conn:
            for name in relations:
                conn.execute(sa.text(f'SELECT * FROM drip."{name}" LIMIT 1')).all()
            assert conn.execute(sa.text("SELECT n FROM drip.later_2027_01")).all() == [(1,)]
        for statement in (
            "INSERT INTO drip.later VALUES ('2027-01-06', 2)",
            "UPDATE drip.tracks SET event = 'x'",
            "DELETE FROM drip.subscribers",
            "TRUNCATE drip.email_opened",
            "CREATE TABLE drip.mine (x int)",
            "DROP VIEW drip.email_performance",
        ):
            with analyst.connect() as conn, pytest.raises(sa.exc.ProgrammingError) as refused:
                conn.execute(sa.text(statement))
            assert isinstance(refused.value.orig, psycopg2.errors.InsufficientPrivilege), statement
    finally:
        analyst.dispose()
    # drip-loader's read-only commands work as the analyst too
    csv = run_cli(["report", "email-performance", "--format", "csv"], url=warehouse.analyst_url)
    assert csv.startswith("email_id,email_subject,")
    assert run_cli(["sql", "SELECT count(*) AS n FROM later"], url=warehouse.analyst_url)
    assert f"at revision {migrate.HEAD}" in run_cli(["status"], url=warehouse.analyst_url)
    sources = tmp_path / "sources.yml"
    run_cli(["dbt-sources", "--out", str(sources)], url=warehouse.analyst_url)
    assert "email_performance" in sources.read_text()


def test_adopt_hands_a_warehouse_made_by_a_superuser_to_the_loader_role(
    bare_warehouse: Warehouse, tmp_path: Path
) -> None:
    warehouse = bare_warehouse
    # drip-loader built the warehouse while it connected as the admin
    events = write_ndjson(tmp_path / "events.ndjson", generate_events(events=300, seed=8))
    run_cli(["load", str(events)], url=warehouse.admin_url)
    warehouse.make_roles()  # roles.sql's CREATE SCHEMA does nothing: the schema exists
    warehouse.psql(read_shipped("adopt.sql"))
    admin = warehouse.engine()
    try:
        others = rows(
            admin,
            "SELECT relname FROM pg_class WHERE relnamespace = 'drip'::regnamespace "
            "AND relowner <> to_regrole(:role) UNION ALL "
            "SELECT proname FROM pg_proc WHERE pronamespace = 'drip'::regnamespace "
            "AND proowner <> to_regrole(:role) UNION ALL "
            "SELECT nspname FROM pg_namespace WHERE nspname = 'drip' "
            "AND nspowner <> to_regrole(:role)",
            role=warehouse.loader,
        )
    finally:
        admin.dispose()
    assert others == []
    url = warehouse.loader_url
    more = write_ndjson(tmp_path / "more.ndjson", generate_events(events=300, seed=9))
    run_cli(["load", str(more)], url=url)
    run_cli(["collections", "enable", "subscriber_applied_tag"], url=url)
    assert run_cli(["rebuild"], url=url).startswith("Rebuilt ")
    csv = run_cli(["report", "daily", "--format", "csv"], url=warehouse.analyst_url)
    assert csv.startswith("day,")
