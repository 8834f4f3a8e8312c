"""Pipeline commands: load, rebuild, emit, sample."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ConfigError
from .edge import database as _database
from .edge import err as _err
from .edge import guard as _guard
from .edge import schema_name as _schema_name
from .edge import settings as _settings
from .options import DatabaseUrl, JsonFlag, Schema, SegmentHost, SegmentWriteKey
from .progress import Bar as _Bar


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
            "--batch-size", min=1, help="Records per COPY and transaction.", show_default=False
        ),
    ] = None,
    max_record_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-record-bytes",
            min=1,
            help="Reject records larger than this (default 1 MiB).",
            show_default=False,
        ),
    ] = None,
    writers: Annotated[
        int | None,
        typer.Option(
            "--writers",
            min=1,
            max=32,
            help="Connections landing chunks (then merging subscribers) at once (default 2; "
            "env DRIP_LOADER_WRITERS). More help when the database server has idle cores.",
            show_default=False,
        ),
    ] = None,
    emit: Annotated[
        bool,
        typer.Option("--emit", help="Then forward events Segment has not confirmed (see emit)."),
    ] = False,
    segment_write_key: SegmentWriteKey = None,
    segment_host: SegmentHost = None,
    as_json: JsonFlag = False,
) -> None:
    """Land Drip webhook bodies from files, then transform into the collection tables and tracks."""
    from ..pipeline.run import run_pipeline

    def action() -> Any:
        settings = _settings(
            database_url,
            schema,
            batch_size=batch_size,
            max_record_bytes=max_record_bytes,
            writers=writers,
            segment_write_key=segment_write_key,
            segment_host=segment_host,
        )
        options: dict[str, Any] = {"migrate_first": not no_migrate, "announce": _err, "emit": emit}
        if sys.stderr.isatty() and not as_json:
            with _Bar() as bar:
                return run_pipeline(settings, paths or [], progress=bar, **options)
        return run_pipeline(settings, paths or [], **options)

    report = _guard(action)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    rate = report.read / report.seconds if report.seconds else 0.0
    typer.echo(
        f"Run {report.load_id}: {len(report.sources)} source(s), {report.seconds:.2f} s"
        + (f" ({rate:,.0f} records/s)" if report.read else "")
    )
    for label, value in (
        ("read", report.read),
        ("landed", report.landed),
        ("duplicates", report.duplicates),
        ("rejected", report.rejected),
        ("not an email event", report.not_email),
        ("transformed", report.transformed),
    ):
        typer.echo(f"  {label:<20}{value:>12,}")
    typer.echo("  rows added:")
    for table, added in report.rows_added.items():
        typer.echo(f"    {table:<22}{added:>12,}")
    if report.forwarding:
        typer.echo(f"  {'sent to Segment':<20}{report.sent:>12,}")
        if report.failed:
            label = "failed for Segment"
            typer.echo(f"  {label:<20}{report.failed:>12,}  (see drip-loader emit --help)")
    if report.rejected:
        typer.echo(
            f"  {report.rejected} rejected record(s) kept in {_schema_name(schema)}._rejects with the reason and origin."
        )


def rebuild(database_url: DatabaseUrl = None, schema: Schema = None) -> None:
    """Rebuild the collection tables and tracks from the raw landed events (after a mapping
    fix), month by month; rows whose raw events are archived are kept."""
    from ..pipeline.run import rebuild as rebuild_tables

    def action() -> list[str]:
        settings = _settings(database_url, schema)
        with _database(settings) as engine:
            report = rebuild_tables(
                engine,
                schema=settings.schema,
                batch_size=settings.transform_batch_size,
                merge_parts=settings.writers,
            )
            return report.lines()

    for line in _guard(action):
        typer.echo(line)


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
            "--batch-size", min=1, max=2500, help="Most events per request (also kept < 500 KB)."
        ),
    ] = 2500,
    as_json: JsonFlag = False,
) -> None:
    """Forward every event in the warehouse Segment has not confirmed yet to Segment's HTTP API."""
    from ..pipeline.run import forward

    def action() -> Any:
        settings = _settings(
            database_url, schema, segment_write_key=segment_write_key, segment_host=segment_host
        )
        with _database(settings) as engine:
            return forward(
                engine,
                schema=settings.schema,
                write_key=settings.segment_write_key,
                host=settings.segment_host,
                retry_failed=retry_failed,
                batch_size=batch_size,
            )

    report = _guard(action)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    rate = report.sent / report.seconds if report.seconds else 0.0
    typer.echo(
        f"Forwarded to Segment in {report.seconds:.2f} s ({report.requests:,} request(s), "
        f"{report.retries:,} retried)" + (f", {rate:,.0f} events/s" if report.sent else "")
    )
    for label, value in (
        ("sent", report.sent),
        ("failed", report.failed),
        ("requeued (--retry-failed)", report.requeued),
        ("queued (forwarding on)", report.queued),
    ):
        typer.echo(f"  {label:<26}{value:>12,}")
    if report.failed:
        typer.echo(
            f"  {report.failed:,} event(s) Segment cannot accept are marked failed in "
            f"{_schema_name(schema)}._outbox (last_error says why); after a fix, "
            "run `drip-loader emit --retry-failed`."
        )


def sample(
    events: Annotated[int, typer.Option("--events", min=1, help="How many webhook bodies.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same bytes.")] = 1,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write NDJSON here (default stdout).", show_default=False),
    ] = None,
) -> None:
    """Write deterministic, realistic Drip webhook bodies (NDJSON) for demos, tests and benchmarks."""
    from ..domain.sample import write_sample

    def action() -> None:
        if out is None:
            write_sample(sys.stdout.buffer, events=events, seed=seed)
            sys.stdout.flush()
            return
        try:
            with open(out, "wb") as handle:
                write_sample(handle, events=events, seed=seed)
        except OSError as exc:
            raise ConfigError(f"cannot write {out}: {exc.strerror}") from None
        _err(f"Wrote {events:,} events to {out}")

    _guard(action)
