"""Revision 0002 (analyst layer): upgrade, downgrade, frozen view text, and replacing a view."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

from loader.warehouse import migrate
from loader.warehouse.replaceable import ReplaceableObject
from loader.warehouse.sqlfiles import sql_dir

ANALYST_OBJECTS = [
    ("_to_timestamptz", "f"),
    ("campaign_unsubscribes", "v"),
    ("daily_email_activity", "v"),
    ("email_performance", "v"),
    ("subscribers", "r"),
]


def analyst_objects(engine: Engine) -> list[tuple[str, str]]:
    """The 0002 objects present in schema drip: (name, kind) with r table, v view, f function."""
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n"
                " ON n.oid = c.relnamespace WHERE n.nspname = 'drip' AND c.relkind IN ('r', 'v')"
                " UNION ALL SELECT p.proname, 'f' FROM pg_proc p JOIN pg_namespace n"
                " ON n.oid = p.pronamespace WHERE n.nspname = 'drip' ORDER BY 1"
            )
        ).all()
    names = {name for name, _ in ANALYST_OBJECTS}
    return [(name, kind) for name, kind in found if name in names]


def test_upgrade_downgrade_upgrade(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, schema="drip")
    assert analyst_objects(empty_engine) == ANALYST_OBJECTS

    migrate.downgrade(empty_engine, schema="drip", revision="0001")
    assert migrate.current_revision(empty_engine, schema="drip") == "0001"
    assert analyst_objects(empty_engine) == []

    migrate.downgrade(empty_engine, schema="drip")
    migrate.upgrade(empty_engine, schema="drip")
    assert migrate.current_revision(empty_engine, schema="drip") == migrate.head_revision()
    assert analyst_objects(empty_engine) == ANALYST_OBJECTS
    with empty_engine.connect() as conn:  # views answer, and search_path was put back
        assert conn.execute(text("SELECT count(*) FROM drip.email_performance")).scalar() == 0
        assert conn.execute(text("SHOW search_path")).scalar() == '"$user", public'


def test_views_work_in_any_schema(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, schema="mart")
    with empty_engine.connect() as conn:
        definition = conn.execute(text("SELECT pg_get_viewdef('mart.daily_email_activity')"))
        assert "FROM mart.tracks" in definition.scalar_one()


def _frozen_objects() -> dict[str, ReplaceableObject]:
    """The newest frozen copy of every replaceable object, walking revisions base → head."""
    script = ScriptDirectory(str(migrate.migrations_dir()))
    objects: dict[str, ReplaceableObject] = {}
    for revision in reversed(list(script.walk_revisions())):
        for value in vars(revision.module).values():
            if isinstance(value, ReplaceableObject):
                objects[value.name] = value
    return objects


def test_head_revision_carries_the_current_sql_files() -> None:
    # sql/views and sql/functions are the source a new revision copies from; a change to a
    # file without a revision replacing the object would never reach a warehouse.
    frozen = _frozen_objects()
    files = sorted([*sql_dir().glob("views/*.sql"), *sql_dir().glob("functions/*.sql")])
    assert len(files) == 5
    for path in files:
        body = path.read_text(encoding="utf-8")
        name = re.match(r"-- name: (.+) \((view|function)\)\n", body)
        assert name, f"{path} must start with '-- name: <name> (view|function)'"
        assert name.group(1) in frozen, f"no revision creates {name.group(1)}"
        assert frozen[name.group(1)].sqltext == body, (
            f"{path} changed: add a revision that replaces {name.group(1)} "
            f'(op.replace_view(new, replaces="<rev>.<name>"))'
        )


def test_offline_sql(tmp_path: Path) -> None:
    buffer = io.StringIO()
    cfg = migrate.alembic_config(schema="drip")
    cfg.output_buffer = buffer
    command.upgrade(cfg, "0001:0002", sql=True)
    sql = buffer.getvalue()

    assert "CREATE FUNCTION drip._to_timestamptz(value text)" in sql
    assert "set_config('search_path', 'drip', true)" in sql
    assert "CREATE VIEW drip.email_performance AS" in sql
    assert "WITH (fillfactor = 70)" in sql


REVISION_NEXT = '''"""Test only: count events per person in daily_email_activity.

Revision ID: 9999
Revises: HEAD
"""

from alembic import op

from loader.warehouse.replaceable import ReplaceableObject

revision = "9999"
down_revision = "HEAD"
branch_labels = None
depends_on = None

daily_email_activity = ReplaceableObject(
    "daily_email_activity",
    """SELECT CAST(timezone('UTC', "timestamp") AS date) AS day, event, count(*) AS events,
       count(DISTINCT coalesce(user_id, anonymous_id)) AS unique_people,
       round(count(*)::numeric / count(DISTINCT coalesce(user_id, anonymous_id)), 2) AS per_person
FROM tracks GROUP BY 1, 2""",
)


def upgrade() -> None:
    op.replace_view(daily_email_activity, replaces="0002.daily_email_activity")


def downgrade() -> None:
    op.replace_view(daily_email_activity, replace_with="0002.daily_email_activity")
'''


def test_a_later_revision_replaces_a_view_and_gets_it_back(
    empty_engine: Engine, tmp_path: Path
) -> None:
    # the cookbook pattern a future revision follows: the old text comes from 0002's module
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.migrations_dir(), scripts, ignore=shutil.ignore_patterns("__pycache__"))
    head = migrate.head_revision()
    (scripts / "versions" / "9999_test.py").write_text(REVISION_NEXT.replace("HEAD", head))

    def run(action: str, revision: str) -> None:
        with empty_engine.begin() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(scripts))
            cfg.attributes.update(schema="drip", connection=conn)
            getattr(command, action)(cfg, revision)

    def columns() -> list[str]:
        with empty_engine.connect() as conn:
            result = conn.execute(text("SELECT * FROM drip.daily_email_activity LIMIT 0"))
            return list(result.keys())

    run("upgrade", "head")
    assert columns() == ["day", "event", "events", "unique_people", "per_person"]
    run("downgrade", head)
    assert columns() == ["day", "event", "events", "unique_people"]
