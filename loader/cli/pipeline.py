"""Pipeline commands: load, rebuild, emit, sample."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_WRITERS,
    SEGMENT_MAX_BATCH_EVENTS,
)
from .edge import err, settings
from .options import DatabaseUrl, FormatOption, Schema, SegmentHost, SegmentWriteKey
from .progress import bar
from .render import Format, check_out, opened, render


def load(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="NDJSON or JSON-array files (optionally .gz), directories, or - for stdin. "
            "None: only transform what is pending.",
            show_default=False,
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    no_migrate: Annotated[
        bool,
        typer.Option(
            "--no-migrate", help="Do not upgrade the schema first (fail if it is behind)."
        ),
    ] = False,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            min=1,
            help="Records per COPY and transaction. Default: $DRIP_LOADER_BATCH_SIZE or "
            f"{DEFAULT_BATCH_SIZE:,}.",
            show_default=False,
        ),
    ] = None,
    max_record_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-record-bytes",
            min=1,
            help="Reject records larger than this. Default: $DRIP_LOADER_MAX_RECORD_BYTES or "
            f"{DEFAULT_MAX_RECORD_BYTES:,}.",
            show_default=False,
        ),
    ] = None,
    writers: Annotated[
        int | None,
        typer.Option(
            "--writers",
            min=1,
            max=32,
            help="Connections landing chunks (then merging subscribers) at once; more help "
            "when the database server has idle cores. Default: $DRIP_LOADER_WRITERS or "
            f"{DEFAULT_WRITERS}.",
            show_default=False,
        ),
    ] = None,
    emit: Annotated[
        bool,
        typer.Option("--emit", help="Then forward events Segment has not confirmed (see emit)."),
    ] = False,
    segment_write_key: SegmentWriteKey = None,
    segment_host: SegmentHost = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Land Drip webhook bodies from files, then transform into the collection tables and tracks."""
    from ..pipeline.run import run_pipeline

    options = settings(
        database_url,
        schema,
        batch_size=batch_size,
        max_record_bytes=max_record_bytes,
        writers=writers,
        segment_write_key=segment_write_key,
        segment_host=segment_host,
    )
    with bar() as progress:
        report = run_pipeline(
            options,
            paths or [],
            migrate_first=not no_migrate,
            announce=err,
            emit=emit,
            progress=progress,
        )
    render(report, fmt)


def rebuild(
    database_url: DatabaseUrl = None, schema: Schema = None, fmt: FormatOption = Format.table
) -> None:
    """Rebuild the collection tables and tracks from the raw landed events (after a mapping
    fix), month by month; rows whose raw events are archived are kept."""
    from .. import commands

    render(commands.rebuild_tables(settings(database_url, schema), announce=err), fmt)


def emit(
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    segment_write_key: SegmentWriteKey = None,
    segment_host: SegmentHost = None,
    retry_failed: Annotated[
        bool,
        typer.Option("--retry-failed", help="First queue again the events marked failed."),
    ] = False,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            min=1,
            max=SEGMENT_MAX_BATCH_EVENTS,
            help="Most events per request (also kept under 500 KB).",
        ),
    ] = SEGMENT_MAX_BATCH_EVENTS,
    fmt: FormatOption = Format.table,
) -> None:
    """Forward every event in the warehouse Segment has not confirmed yet to Segment's HTTP API."""
    from .. import commands

    options = settings(
        database_url, schema, segment_write_key=segment_write_key, segment_host=segment_host
    )
    report = commands.emit(options, retry_failed=retry_failed, batch_size=batch_size, announce=err)
    render(report, fmt)


def sample(
    events: Annotated[int, typer.Option("--events", min=1, help="How many webhook bodies.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same bytes.")] = 1,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write NDJSON here instead of stdout (its directory must exist).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write deterministic, realistic Drip webhook bodies (NDJSON) for demos, tests and benchmarks."""
    from ..domain.sample import write_sample

    check_out(out)
    if out is None:
        write_sample(sys.stdout.buffer, events=events, seed=seed)
        sys.stdout.flush()
        return
    with opened(out) as handle:
        write_sample(handle, events=events, seed=seed)
    err(f"Wrote {events:,} events to {out}")
