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
from datetime import date, datetime
from pathlib import Path
from typing import Any

from .analyst import catalog
from .analyst.attribution import run_attribution
from .analyst.report import query_table, run_report
from .config import (
    DEFAULT_IMPORT_BATCH_SIZE,
    DEFAULT_REJECTS_LIMIT,
    SEGMENT_MAX_BATCH_EVENTS,
    Settings,
)
from .domain.registry import resolve
from .errors import ConfigError
from .pipeline.emit import EmitReport, TurnedOff, check_forwarding, disable_forwarding
from .pipeline.import_report import ImportReport
from .pipeline.import_segment import check_options as check_import
from .pipeline.import_segment import import_segment as run_import
from .pipeline.rebuild import RebuildReport
from .pipeline.rebuild import rebuild_tables as rebuild
from .pipeline.retry import RetryReport, retry_rejects
from .pipeline.run import forward
from .progress import QUIET, Progress
from .results import Rows
from .warehouse import migrate as migrations
from .warehouse.archive import ArchiveReport, archive_months
from .warehouse.collections import (
    CollectionChange,
    CollectionList,
    disable_collections,
    disable_warning,
    enable_collections,
    list_collections,
)
from .warehouse.connection import ConnectionInfo, connection_info
from .warehouse.db import open_database, psql_command
from .warehouse.rejects import Reject, RejectList, get_reject, list_rejects
from .warehouse.retention import PruneReport
from .warehouse.retention import prune as prune_warehouse
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


def rebuild_tables(
    settings: Settings, *, progress: Progress = QUIET, announce: Announce = _quiet
) -> RebuildReport:
    """Check the schema is at head, then map the raw events again into the collection
    tables and ``tracks``, month by month, keeping every row it cannot rebuild."""
    with open_database(settings, announce=announce) as engine:
        _require_head(engine, settings.schema)
        return rebuild(
            engine,
            schema=settings.schema,
            batch_size=settings.transform_batch_size,
            merge_parts=settings.writers,
            progress=progress,
        )


def emit(
    settings: Settings,
    *,
    retry_failed: bool = False,
    batch_size: int = SEGMENT_MAX_BATCH_EVENTS,
    turn_on: bool = False,
    announce: Announce = _quiet,
) -> EmitReport:
    """Check the schema is at head, then forward every event Segment has not confirmed
    (``turn_on``: after ``emit --off``), recorded in ``_runs``, then delete the sent rows
    older than ``settings.outbox_retention``.

    Raises:
        ConfigError: no write key or a bad batch size (before the database is opened), or
            the schema is behind head.
        ForwardingOff: forwarding was turned off and ``turn_on`` is False.
        EmitError: as :func:`loader.pipeline.emit.emit_events`.
    """
    write_key = check_forwarding(
        write_key=settings.segment_write_key, host=settings.segment_host, batch_size=batch_size
    )
    with open_database(settings, announce=announce) as engine:
        _require_head(engine, settings.schema)
        return forward(
            engine,
            schema=settings.schema,
            write_key=write_key,
            host=settings.segment_host,
            retry_failed=retry_failed,
            batch_size=batch_size,
            turn_on=turn_on,
            outbox_retention=settings.outbox_retention,
        )


def emit_off(settings: Settings, *, announce: Announce = _quiet) -> TurnedOff:
    """Turn forwarding to Segment off (``emit --off``; no write key needed)."""
    with open_database(settings, announce=announce) as engine:
        _require_head(engine, settings.schema)
        return disable_forwarding(engine, schema=settings.schema)


def prune(settings: Settings, *, dry_run: bool = False, announce: Announce = _quiet) -> PruneReport:
    """Delete ``_runs`` rows older than ``settings.runs_retention`` and sent ``_outbox`` rows
    older than ``settings.outbox_retention`` (``dry_run``: count them only)."""
    with open_database(settings, announce=announce) as engine:
        return prune_warehouse(
            engine,
            schema=settings.schema,
            runs_older_than=settings.runs_retention,
            outbox_older_than=settings.outbox_retention,
            dry_run=dry_run,
        )


def archive(
    settings: Settings,
    *,
    before: date,
    to: Path,
    progress: Progress = QUIET,
    announce: Announce = _quiet,
) -> ArchiveReport:
    """Move the raw events of every whole month before ``before`` into checked gzip NDJSON
    files in ``to`` (:func:`loader.warehouse.archive.archive_months`)."""
    with open_database(settings, announce=announce) as engine:
        return archive_months(
            engine, schema=settings.schema, before=before, to=to, progress=progress
        )


def _require_head(engine: Any, schema: str) -> None:
    migrations.require_head(
        engine, schema=schema, then="run `drip-loader migrate` (or `drip-loader load`) first"
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
    view: catalog.ViewReport,
    *,
    window: catalog.Window = catalog.ALL_TIME,
    announce: Announce = _quiet,
) -> Rows:
    """One view report (:data:`loader.analyst.catalog.REPORTS`) over ``window``.

    Raises:
        ConfigError: the schema has no such view (not migrated).
    """
    with open_database(settings, announce=announce) as engine:
        return run_report(engine, view, schema=settings.schema, window=window)


def attribution(
    settings: Settings, question: catalog.Attribution, *, announce: Announce = _quiet
) -> Rows:
    """Which emails led to the conversions of another Segment source (last touch).

    Raises:
        ConfigError: a conversions table that cannot be used.
    """
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


def _refuse(warning: str) -> bool:
    return False


def disable(
    settings: Settings,
    names: Sequence[str],
    *,
    confirm: Callable[[str], bool] = _refuse,
    announce: Announce = _quiet,
) -> CollectionChange:
    """Turn ``names`` off; their rows stay.

    Args:
        confirm: asked, with what it costs, before an email collection is turned off (the
            reports and attribution read them); nothing changes unless it says yes.

    Raises:
        ConfigError: no name, an unknown one, or an email collection ``confirm`` did not
            let go (before the database is opened).
    """
    wanted = resolve(names)
    warning = disable_warning(wanted)
    if warning is not None and not confirm(warning):
        raise ConfigError(f"{warning}; add --yes to go ahead")
    with open_database(settings, announce=announce) as engine:
        return disable_collections(engine, schema=settings.schema, names=wanted)


def rejects(
    settings: Settings,
    *,
    since: str | datetime | None = None,
    reason: str | None = None,
    limit: int = DEFAULT_REJECTS_LIMIT,
    landed: bool = False,
    announce: Announce = _quiet,
) -> RejectList:
    """The rejects still rejected (with ``landed``, those a retry landed too), newest first.

    Raises:
        ConfigError: a bad ``since`` or ``limit`` (before the database is opened), or a
            schema behind head.
    """
    start = catalog.parse_bound(since, option="--since")
    if limit < 1:
        raise ConfigError(f"--limit must be at least 1, not {limit}")
    with open_database(settings, announce=announce) as engine:
        return list_rejects(
            engine, schema=settings.schema, since=start, reason=reason, limit=limit, landed=landed
        )


def reject(settings: Settings, reject_id: int, *, announce: Announce = _quiet) -> Reject:
    """One reject: its body, origin, reason and retries.

    Raises:
        RejectNotFound: no reject has that id.
    """
    with open_database(settings, announce=announce) as engine:
        return get_reject(engine, reject_id, schema=settings.schema)


def retry(
    settings: Settings,
    ids: Sequence[int] = (),
    *,
    every: bool = False,
    since: str | datetime | None = None,
    dry_run: bool = False,
    announce: Announce = _quiet,
    progress: Progress | None = None,
) -> RetryReport:
    """Re-validate rejects with the current code (and ``settings.max_record_bytes``); land
    those that pass now: ``ids``, or ``every`` one, or those rejected since ``since``.

    Raises:
        ConfigError: no choice of rejects, or two (before the database is opened).
        RejectNotFound: an id names no reject (nothing is retried then).
    """
    if ids and every:
        raise ConfigError("give reject ids or --all, not both")
    if ids and since is not None:
        raise ConfigError("--since chooses rejects by time: give it without ids")
    if not ids and not every and since is None:
        raise ConfigError(
            "say which rejects to retry: their ids (`drip-loader rejects list` shows them), "
            "--all, or --since TIME"
        )
    start = catalog.parse_bound(since, option="--since")
    with open_database(settings, announce=announce) as engine:
        return retry_rejects(
            engine,
            schema=settings.schema,
            ids=ids,
            since=start,
            max_record_bytes=settings.max_record_bytes,
            transform_batch_size=settings.transform_batch_size,
            dry_run=dry_run,
            progress=progress,
        )


def connection(settings: Settings, *, reveal: bool = False) -> ConnectionInfo:
    """How a BI tool connects to the warehouse (nothing is started); the password only
    with ``reveal``."""
    return connection_info(settings, reveal=reveal)
