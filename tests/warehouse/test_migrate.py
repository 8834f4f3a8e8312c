"""Migrations: the schema changes only through alembic, both ways, in any schema."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from loader.warehouse import migrate
from loader.warehouse.db import make_engine
from loader.warehouse.partitions import ensure_partitions
from loader.warehouse.tables import build_metadata
from tests.support.warehouse import TABLES

ROOT = Path(__file__).resolve().parents[2]


def _tables(url: str, schema: str) -> set[str]:
    engine = make_engine(url, null_pool=True)
    try:
        return set(sa.inspect(engine).get_table_names(schema=schema))
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url, null_pool=True)
    migrate.upgrade(engine, schema="drip")
    expected = {*TABLES, "_raw_events", "_pending", "_rejects", "_runs", "_alembic_version"}
    assert expected <= _tables(empty_db_url, "drip")
    assert migrate.current_revision(engine, schema="drip") == migrate.head_revision()
    migrate.downgrade(engine, schema="drip")
    assert _tables(empty_db_url, "drip") == {"_alembic_version"}
    assert migrate.current_revision(engine, schema="drip") is None
    migrate.upgrade(engine, schema="drip")
    assert expected <= _tables(empty_db_url, "drip")
    engine.dispose()


def test_head_matches_the_metadata_alembic_check(db_url: str) -> None:
    engine = make_engine(db_url, null_pool=True)
    # monthly partitions come with the data; the metadata describes their parents only
    ensure_partitions(engine, schema="drip", months=[date(2026, 10, 1), date(2025, 1, 1)])
    with engine.begin() as conn:
        command.check(migrate.alembic_config(schema="drip", connection=conn))
    engine.dispose()
    assert set(build_metadata("drip").tables) <= {f"drip.{t}" for t in _tables(db_url, "drip")}


def test_another_schema_is_independent(db_url: str) -> None:
    engine = make_engine(db_url, null_pool=True)
    migrate.upgrade(engine, schema="marketing_drip")
    assert "tracks" in _tables(db_url, "marketing_drip")
    migrate.downgrade(engine, schema="marketing_drip")
    assert migrate.current_revision(engine, schema="drip") == migrate.head_revision()
    engine.dispose()


def test_plain_alembic_from_the_repo_root_reads_the_loader_settings(empty_db_url: str) -> None:
    env = {**os.environ, "DRIP_LOADER_DATABASE_URL": empty_db_url, "DRIP_LOADER_SCHEMA": "crm"}
    alembic = [sys.executable, "-m", "alembic"]
    up = subprocess.run(
        [*alembic, "upgrade", "head"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert up.returncode == 0, up.stderr
    assert "tracks" in _tables(empty_db_url, "crm")
    down = subprocess.run(
        [*alembic, "downgrade", "base"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert down.returncode == 0, down.stderr
    assert _tables(empty_db_url, "crm") == {"_alembic_version"}


def test_the_head_constant_names_the_newest_revision() -> None:
    # `load` checks the schema against migrate.HEAD without loading alembic: a new
    # revision must bump it.
    assert migrate.HEAD == migrate.head_revision()


def test_a_load_at_head_does_not_import_alembic(db_url: str) -> None:
    code = (
        "import sys; from loader.warehouse import migrate; from loader.warehouse.db import make_engine; "
        f"migrate.upgrade(make_engine({db_url!r}), schema='drip'); "
        "print(sorted(m for m in sys.modules if m.startswith('alembic')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _legacy_warehouse(url: str, schema: str) -> None:
    """A warehouse as the code before the rename left it: revision 0004 in ``alembic_version``."""
    engine = make_engine(url, null_pool=True)
    migrate.upgrade(engine, schema=schema, revision="0004")
    with engine.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE {schema}._alembic_version RENAME TO alembic_version"))
    assert migrate.current_revision(engine, schema=schema) == "0004"  # read under the old name
    engine.dispose()


def _version_tables(url: str, schema: str) -> set[str]:
    return {t for t in _tables(url, schema) if t.endswith("alembic_version")}


def test_an_upgrade_renames_the_version_table_of_an_old_warehouse(empty_db_url: str) -> None:
    _legacy_warehouse(empty_db_url, "drip")
    engine = make_engine(empty_db_url, null_pool=True)
    migrate.upgrade(engine, schema="drip")  # what `migrate` and `load` call
    assert _version_tables(empty_db_url, "drip") == {"_alembic_version"}
    assert migrate.current_revision(engine, schema="drip") == migrate.HEAD
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM drip._alembic_version")).all() == [
            (migrate.HEAD,)
        ]
    engine.dispose()


def test_an_old_warehouse_at_head_is_renamed_too(empty_db_url: str) -> None:
    # at head, upgrade normally returns after one query; the old name must still be moved
    engine = make_engine(empty_db_url, null_pool=True)
    migrate.upgrade(engine, schema="drip")
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE drip._alembic_version RENAME TO alembic_version"))
    migrate.upgrade(engine, schema="drip")
    assert _version_tables(empty_db_url, "drip") == {"_alembic_version"}
    engine.dispose()


def test_plain_alembic_renames_the_version_table_of_an_old_warehouse(empty_db_url: str) -> None:
    _legacy_warehouse(empty_db_url, "crm")
    env = {**os.environ, "DRIP_LOADER_DATABASE_URL": empty_db_url, "DRIP_LOADER_SCHEMA": "crm"}
    up = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert up.returncode == 0, up.stderr
    assert _version_tables(empty_db_url, "crm") == {"_alembic_version"}
    engine = make_engine(empty_db_url, null_pool=True)
    assert migrate.current_revision(engine, schema="crm") == migrate.HEAD
    engine.dispose()


def test_concurrent_upgraders_of_an_old_warehouse_rename_once(empty_db_url: str) -> None:
    # separate processes, like loaders starting at once (alembic's context is per process)
    _legacy_warehouse(empty_db_url, "drip")
    code = (
        "from loader.warehouse import migrate; from loader.warehouse.db import make_engine; "
        f"migrate.upgrade(make_engine({empty_db_url!r}, null_pool=True), schema='drip')"
    )
    upgraders = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    stderr = [p.communicate()[1] for p in upgraders]
    failures = [err for p, err in zip(upgraders, stderr, strict=True) if p.returncode != 0]
    assert failures == []
    assert _version_tables(empty_db_url, "drip") == {"_alembic_version"}
    engine = make_engine(empty_db_url, null_pool=True)
    assert migrate.current_revision(engine, schema="drip") == migrate.HEAD
    engine.dispose()
