"""Schema migrations: run alembic programmatically against the warehouse schema.

The revisions live in ``migrations/`` (shipped in the wheel as ``loader/_migrations``).
Each schema keeps its own ``_alembic_version`` table, so several warehouses can share a
database.  Upgrades take an advisory lock: two loaders starting at once migrate once.
Warehouses migrated before loader-owned tables had their ``_`` prefix keep ``alembic_version``
until their next upgrade renames it (under the same lock, see ``migrations/env.py``).

alembic is imported only when there is migrating to do: every ``load`` starts by checking
the schema, and at head (nearly always) that is one query, not alembic's imports and the
reading of every revision file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import column, select, table, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.sql import Select

from ..config import DEFAULT_SCHEMA
from ..domain.registry import DEFAULT_ON
from ..errors import ConfigError
from ..results import Record
from .db import translating
from .sqlfiles import read_sql, sql_dir
from .tables import build_metadata

if TYPE_CHECKING:
    from alembic.config import Config

HEAD = "0011"
"""The newest revision of ``migrations/`` (a test checks it against the script directory)."""

VERSION_TABLE = "_alembic_version"
"""alembic's ``version_table`` in each schema."""
LEGACY_VERSION_TABLE = "alembic_version"
"""Its name before it had the ``_`` prefix of loader-owned tables (spec §5)."""


@dataclass(frozen=True)
class Migrated(Record):
    """What ``migrate`` did: the schema and the revision it is at now."""

    schema: str
    revision: str

    def as_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "revision": self.revision}

    def lines(self) -> list[str]:
        return [f"Schema {self.schema!r} is at revision {self.revision}."]


def migrations_dir() -> Path:
    """The alembic script directory: package data when installed, the repo's folder otherwise."""
    packaged = Path(__file__).resolve().parent.parent / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "migrations"


Progress = Callable[[str], None]
"""Where a revision that moves rows reports each batch (default: a line on stderr)."""


def alembic_config(
    *, schema: str, connection: Connection | None = None, progress: Progress | None = None
) -> Config:
    """An alembic :class:`Config` for ``schema``, optionally bound to an open connection,
    with ``progress`` for the revisions that report it."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["schema"] = schema
    if connection is not None:
        cfg.attributes["connection"] = connection
    if progress is not None:
        cfg.attributes["progress"] = progress
    return cfg


def upgrade(
    engine: Engine, *, schema: str, revision: str = "head", progress: Progress | None = None
) -> str:
    """Bring ``schema`` to ``revision`` (default: the newest); return the revision it is at.

    A revision that moves rows (0008) reports its batches to ``progress``.

    Raises:
        ConfigError: ``schema`` was never migrated but holds tables with the names of ours
            (:func:`refuse_foreign_tables`); nothing is changed then.
    """
    table, current = _version(engine, schema=schema)
    if revision == "head" and (table, current) == (VERSION_TABLE, HEAD):
        return HEAD
    _refuse_unknown(current, schema=schema)
    if table is None:
        refuse_foreign_tables(engine, schema=schema)
    from alembic import command

    with translating(), engine.begin() as conn:
        cfg = alembic_config(schema=schema, connection=conn, progress=progress)
        command.upgrade(cfg, revision)
    return head_revision() if revision == "head" else revision


SEGMENT_TABLES = frozenset((*DEFAULT_ON, "tracks"))
"""Tables Segment's Drip source writes too: finding them means a Segment-made schema."""


def _our_relations(schema: str) -> list[str]:
    """Every table and view the migrations create in ``schema``."""
    tables = [t.name for t in build_metadata(schema).tables.values()]
    views = sorted(p.stem for p in (sql_dir() / "views").glob("*.sql"))
    return [*tables, *views, VERSION_TABLE]


def refuse_foreign_tables(engine: Engine, *, schema: str) -> None:
    """Stop before migrating a schema that holds tables we would create but did not make.

    A schema without a version table is new to drip-loader: a relation there with the name
    of one of ours belongs to someone else, most often Segment's Drip source, whose tables
    have the same names.  alembic would fail on the first ``CREATE TABLE`` with "already
    exists" and roll back; this says what to do instead, before anything is changed.

    Raises:
        ConfigError: such relations exist (one line: a new schema, and ``import-segment``
            when they look like Segment's).
    """
    with translating(), engine.connect() as conn:
        found: list[str] = list(
            conn.execute(
                text(read_sql("migrate/foreign_relations.sql")),
                {"schema": schema, "names": _our_relations(schema)},
            ).scalars()
        )
    if not found:
        return
    # Segment's own tables first: they say whose schema it is
    found.sort(key=lambda name: (name not in SEGMENT_TABLES, name))
    shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
    other = "drip_loader" if schema == DEFAULT_SCHEMA else DEFAULT_SCHEMA
    head = f'schema "{schema}" holds tables drip-loader did not make ({shown})'
    if SEGMENT_TABLES & set(found):
        raise ConfigError(
            f"{head}, perhaps Segment's Drip source: use a new schema (--schema {other}) and "
            f"copy the history with drip-loader import-segment --from-schema {schema}"
        )
    raise ConfigError(
        f"{head}: use a new schema (--schema {other}), or move those tables out of {schema}"
    )


def downgrade(
    engine: Engine, *, schema: str, revision: str = "base", progress: Progress | None = None
) -> None:
    """Take ``schema`` back to ``revision`` (default: nothing)."""
    from alembic import command

    with translating(), engine.begin() as conn:
        cfg = alembic_config(schema=schema, connection=conn, progress=progress)
        command.downgrade(cfg, revision)


def current_revision(engine: Engine, *, schema: str) -> str | None:
    """The revision ``schema`` is at, or None when it was never migrated."""
    return _version(engine, schema=schema)[1]


def _version(engine: Engine, *, schema: str) -> tuple[str | None, str | None]:
    """The version table ``schema`` has (either name) and the revision it holds."""
    with translating(), engine.connect() as conn:
        name = _version_table(conn, schema=schema)
        if name is None:
            return None, None
        try:
            current = conn.execute(_read_version(name, schema)).scalar()
        except ProgrammingError:
            if name != LEGACY_VERSION_TABLE:
                raise
            # a concurrent upgrade renamed it between the two statements
            conn.rollback()
            name = VERSION_TABLE
            current = conn.execute(_read_version(name, schema)).scalar()
        return name, None if current is None else str(current)


def _read_version(name: str, schema: str) -> Select[tuple[str]]:
    version = table(name, column("version_num"), schema=schema)
    return select(version.c.version_num)


def _version_table(conn: Connection, *, schema: str) -> str | None:
    found = conn.execute(text(read_sql("migrate/has_version_table.sql")), {"schema": schema})
    name = found.scalar()
    return None if name is None else str(name)


def rename_legacy_version_table(conn: Connection, *, schema: str) -> None:
    """Rename ``alembic_version`` to ``_alembic_version`` in ``schema`` if it has the old name.

    The caller holds the migration advisory lock, so concurrent upgraders rename once.
    """
    if _version_table(conn, schema=schema) == LEGACY_VERSION_TABLE:
        from alembic.ddl.base import RenameTable  # quotes every name for the dialect

        conn.execute(RenameTable(LEGACY_VERSION_TABLE, VERSION_TABLE, schema=schema))


def require_head(engine: Engine, *, schema: str, then: str) -> None:
    """Check ``schema`` is at the newest revision, for commands that must not migrate.

    Raises:
        ConfigError: it is not; the message ends with ``then`` (what to run).
    """
    current = current_revision(engine, schema=schema)
    if current != HEAD:
        _refuse_unknown(current, schema=schema)
        raise ConfigError(
            f"schema {schema!r} is at revision {current or 'none'}, not {HEAD}: {then}"
        )


def _refuse_unknown(current: str | None, *, schema: str) -> None:
    """Refuse a schema at a revision this drip-loader does not have: a newer one migrated it,
    and neither upgrading nor running on it can be right.

    Raises:
        ConfigError: ``current`` is not a revision of ``migrations/``.
    """
    if current is None:
        return
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        ScriptDirectory(str(migrations_dir())).get_revision(current)
    except CommandError:
        raise ConfigError(
            f"schema {schema!r} is at revision {current}, which this drip-loader (head {HEAD}) "
            "does not know: a newer drip-loader migrated it. Run that version, or take the "
            f"schema back to {HEAD} with its alembic downgrade (see docs/operators.md, "
            "Upgrading) before running this one"
        ) from None


def head_revision() -> str:
    """The newest revision in the script directory."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(migrations_dir())).get_current_head()
    assert head is not None
    return head


def ensure_schema(engine: Engine, *, schema: str, migrate_first: bool) -> None:
    """Migrate ``schema`` to head, or check that it is there when migrating is switched off."""
    if migrate_first:
        upgrade(engine, schema=schema)
        return
    require_head(engine, schema=schema, then="run `drip-loader migrate` (or drop --no-migrate)")
