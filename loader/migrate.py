"""Schema migrations: run alembic programmatically against the warehouse schema.

The revisions live in ``migrations/`` (shipped in the wheel as ``loader/_migrations``).
Each schema keeps its own ``alembic_version`` table, so several warehouses can share a
database.  Upgrades take an advisory lock: two loaders starting at once migrate once.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection, Engine

from .db import translating
from .errors import ConfigError


def migrations_dir() -> Path:
    """The alembic script directory: package data when installed, the repo's folder otherwise."""
    packaged = Path(__file__).parent / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(*, schema: str, connection: Connection | None = None) -> Config:
    """An alembic :class:`Config` for ``schema``, optionally bound to an open connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["schema"] = schema
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, *, schema: str, revision: str = "head") -> None:
    """Bring ``schema`` to ``revision`` (default: the newest)."""
    with translating(), engine.begin() as conn:
        command.upgrade(alembic_config(schema=schema, connection=conn), revision)


def downgrade(engine: Engine, *, schema: str, revision: str = "base") -> None:
    """Take ``schema`` back to ``revision`` (default: nothing)."""
    with translating(), engine.begin() as conn:
        command.downgrade(alembic_config(schema=schema, connection=conn), revision)


def current_revision(engine: Engine, *, schema: str) -> str | None:
    """The revision ``schema`` is at, or None when it was never migrated."""
    with translating(), engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table_schema": schema})
        return context.get_current_revision()


def require_head(engine: Engine, *, schema: str, then: str) -> None:
    """Check ``schema`` is at the newest revision, for commands that must not migrate.

    Raises:
        ConfigError: it is not; the message ends with ``then`` (what to run).
    """
    current = current_revision(engine, schema=schema)
    head = head_revision()
    if current != head:
        raise ConfigError(
            f"schema {schema!r} is at revision {current or 'none'}, not {head}: {then}"
        )


def head_revision() -> str:
    """The newest revision in the script directory."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(migrations_dir())).get_current_head()
    assert head is not None
    return head
