"""One verb per command that works on the warehouse: ``(settings, ...) -> result``.

Each verb checks its options first, then opens the database itself (starting the embedded
server when none is configured) and makes one library call, so that a bad option is
refused before any database is touched, and the CLI (:mod:`loader.cli`) holds no driver,
server or SQL knowledge: it builds the settings, calls one function and renders what it
returns (alembic's ``command.py`` beside its ``config.py``).

The commands whose library call already takes :class:`~loader.config.Settings` and opens
the database itself are not repeated here: ``load`` (:func:`loader.pipeline.run.run_pipeline`),
``serve`` (:func:`loader.serve.server.run_server`) and ``drip sync``
(:func:`loader.drip_api.sync.sync_account`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from .analyst import catalog
from .analyst.attribution import run_attribution
from .analyst.report import query_table, run_report
from .config import DEFAULT_IMPORT_BATCH_SIZE, SEGMENT_MAX_BATCH_EVENTS, Settings
from .domain.registry import resolve
from .pipeline.emit import EmitReport, check_forwarding, emit_events
from .pipeline.import_report import ImportReport
from .pipeline.import_segment import check_options as check_import
from .pipeline.import_segment import import_segment as run_import
from .pipeline.rebuild import RebuildReport
from .pipeline.run import rebuild
from .progress import Progress
from .results import Rows
from .warehouse import migrate as migrations
from .warehouse.collections import (
    CollectionChange,
    CollectionList,
    disable_collections,
    enable_collections,
    list_collections,
)
from .warehouse.db import open_database, psql_command
from .warehouse.status import WarehouseStatus, warehouse_status

Announce = Callable[[str], None]
"""Told what a person should know meanwhile (the embedded server starting, ...)."""


def _quiet(line: str) -> None:
    pass


def migrate(settings: Settings, *, announce: Announce = _quiet) -> migrations.Migrated:
    """Upgrade the warehouse schema to the newest revision."""
    with open_database(settings, announce=announce) as engine:
        revision = migrations.upgrade(engine, schema=settings.schema)
    return migrations.Migrated(settings.schema, revision)


def status(settings: Settings, *, announce: Announce = _quiet) -> WarehouseStatus:
    """Rows per table, pending raw events, rejects and the last runs."""
    with open_database(settings, announce=announce) as engine:
        return warehouse_status(engine, schema=settings.schema)


def query(settings: Settings, sql: str, *, announce: Announce = _quiet) -> Rows:
    """The rows of ``sql``, run read-only in the schema."""
    with open_database(settings, announce=announce) as engine:
        return query_table(engine, sql, schema=settings.schema)


def psql(settings: Settings, *, announce: Announce = _quiet) -> int:
    """Run a psql shell on the warehouse until it exits; its exit status."""
    with open_database(settings, announce=announce) as engine:
        argv, env = psql_command(engine, schema=settings.schema)
        return subprocess.call(argv, env=env)


def rebuild_tables(settings: Settings, *, announce: Announce = _quiet) -> RebuildReport:
    """Rebuild the collection tables and ``tracks`` from the raw landed events, month by
    month, keeping the rows it cannot rebuild."""
    with open_database(settings, announce=announce) as engine:
        return rebuild(
            engine,
            schema=settings.schema,
            batch_size=settings.transform_batch_size,
            merge_parts=settings.writers,
        )


def emit(
    settings: Settings,
    *,
    retry_failed: bool = False,
    batch_size: int = SEGMENT_MAX_BATCH_EVENTS,
    announce: Announce = _quiet,
) -> EmitReport:
    """Check the schema is at head, then forward every event Segment has not confirmed.

    Raises:
        ConfigError: no write key or a bad batch size (before the database is opened), or
            the schema is behind head.
        EmitError: as :func:`loader.pipeline.emit.emit_events`.
    """
    write_key = check_forwarding(
        write_key=settings.segment_write_key, host=settings.segment_host, batch_size=batch_size
    )
    with open_database(settings, announce=announce) as engine:
        migrations.require_head(
            engine,
            schema=settings.schema,
            then="run `drip-loader migrate` (or `drip-loader load`) first",
        )
        return emit_events(
            engine,
            schema=settings.schema,
            write_key=write_key,
            host=settings.segment_host,
            retry_failed=retry_failed,
            batch_size=batch_size,
        )


def import_segment(
    settings: Settings,
    *,
    source_schema: str,
    until: str | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_IMPORT_BATCH_SIZE,
    progress: Progress | None = None,
    announce: Announce = _quiet,
) -> ImportReport:
    """Copy the history of a Segment-made schema into the warehouse (options checked first).

    Raises:
        ConfigError: a bad option (before the database is opened), or as
            :func:`loader.pipeline.import_segment.import_segment`.
        SegmentRowError: as :func:`loader.pipeline.import_segment.import_segment`.
    """
    cutoff = catalog.parse_bound(until, option="--until")
    check_import(
        schema=settings.schema, source_schema=source_schema, until=cutoff, batch_size=batch_size
    )
    with open_database(settings, announce=announce) as engine:
        return run_import(
            engine,
            schema=settings.schema,
            source_schema=source_schema,
            until=cutoff,
            dry_run=dry_run,
            batch_size=batch_size,
            progress=progress,
        )


def report(
    settings: Settings,
    name: str,
    *,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    announce: Announce = _quiet,
) -> Rows:
    """One view report (:data:`loader.analyst.catalog.REPORTS`) over ``[since, until)``.

    Raises:
        ConfigError: an unknown report or a bad window (before the database is opened), or
            a schema without the views.
    """
    view = catalog.view_report(name)
    window = catalog.parse_range(since, until)
    with open_database(settings, announce=announce) as engine:
        return run_report(engine, view, schema=settings.schema, window=window)


def attribution(
    settings: Settings,
    *,
    conversions: str,
    touch: catalog.Touch = catalog.DEFAULT_TOUCH,
    event: str | None = None,
    value_column: str | None = None,
    window: str | timedelta = catalog.DEFAULT_WINDOW,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    announce: Announce = _quiet,
) -> Rows:
    """Which emails led to the conversions of another Segment source (last touch).

    Raises:
        ConfigError: a bad option (before the database is opened), or a conversions table
            that cannot be used.
    """
    question = catalog.attribution(
        conversions=conversions,
        touch=touch,
        event=event,
        value_column=value_column,
        window=window,
        since=since,
        until=until,
    )
    with open_database(settings, announce=announce) as engine:
        return run_attribution(engine, question, schema=settings.schema)


def collections(settings: Settings, *, announce: Announce = _quiet) -> CollectionList:
    """Every collection, its Drip event(s), whether it is on, and its rows."""
    with open_database(settings, announce=announce) as engine:
        return list_collections(engine, schema=settings.schema)


def enable(
    settings: Settings, names: Sequence[str] | None, *, announce: Announce = _quiet
) -> CollectionChange:
    """Turn ``names`` (None: every collection) on and backfill them.

    Raises:
        ConfigError: an unknown name (before the database is opened).
    """
    wanted = None if names is None else resolve(names)
    with open_database(settings, announce=announce) as engine:
        return enable_collections(engine, schema=settings.schema, names=wanted)


def disable(
    settings: Settings, names: Sequence[str], *, announce: Announce = _quiet
) -> CollectionChange:
    """Turn ``names`` off; their rows stay.

    Raises:
        ConfigError: no name, or an unknown one (before the database is opened).
    """
    wanted = resolve(names)
    with open_database(settings, announce=announce) as engine:
        return disable_collections(engine, schema=settings.schema, names=wanted)
