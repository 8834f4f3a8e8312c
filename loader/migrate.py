"""Schema migrations: run alembic programmatically against the warehouse schema.

The revisions live in ``migrations/`` (shipped in the wheel as ``loader/_migrations``).
Each schema keeps its own ``alembic_version`` table, so several warehouses can share a
database.  Upgrades take an advisory lock: two loaders starting at once migrate once.

alembic is imported only when there is migrating to do: every ``load`` starts by checking
the schema, and at head (nearly always) that is one query, not a fifth of a second of
imports and reading the revision files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import column, select, table, text
from sqlalchemy.engine import Connection, Engine

from .db import translating
from .errors import ConfigError
from .sqlfiles import read_sql

if TYPE_CHECKING:
    from alembic.config import Config

HEAD = "0006"
"""The newest revision of ``migrations/`` (a test checks it against the script directory)."""


def migrations_dir() -> Path:
    """The alembic script directory: package data when installed, the repo's folder otherwise."""
    packaged = Path(__file__).parent / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(*, schema: str, connection: Connection | None = None) -> Config:
    """An alembic :class:`Config` for ``schema``, optionally bound to an open connection."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["schema"] = schema
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, *, schema: str, revision: str = "head") -> str:
    """Bring ``schema`` to ``revision`` (default: the newest); return the revision it is at."""
    if revision == "head" and current_revision(engine, schema=schema) == HEAD:
        return HEAD
    from alembic import command

    with translating(), engine.begin() as conn:
        command.upgrade(alembic_config(schema=schema, connection=conn), revision)
    return head_revision() if revision == "head" else revision


def downgrade(engine: Engine, *, schema: str, revision: str = "base") -> None:
    """Take ``schema`` back to ``revision`` (default: nothing)."""
    from alembic import command

    with translating(), engine.begin() as conn:
        command.downgrade(alembic_config(schema=schema, connection=conn), revision)


def current_revision(engine: Engine, *, schema: str) -> str | None:
    """The revision ``schema`` is at, or None when it was never migrated."""
    with translating(), engine.connect() as conn:
        if not conn.execute(
            text(read_sql("migrate/has_version_table.sql")), {"schema": schema}
        ).scalar():
            return None
        version = table("alembic_version", column("version_num"), schema=schema)
        current = conn.execute(select(version.c.version_num)).scalar()
        return None if current is None else str(current)


def require_head(engine: Engine, *, schema: str, then: str) -> None:
    """Check ``schema`` is at the newest revision, for commands that must not migrate.

    Raises:
        ConfigError: it is not; the message ends with ``then`` (what to run).
    """
    current = current_revision(engine, schema=schema)
    if current != HEAD:
        raise ConfigError(
            f"schema {schema!r} is at revision {current or 'none'}, not {HEAD}: {then}"
        )


def head_revision() -> str:
    """The newest revision in the script directory."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(migrations_dir())).get_current_head()
    assert head is not None
    return head
