"""Retention commands: prune (old runs, sent outbox rows) and archive (raw months to files)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from ..config import DEFAULT_RUNS_RETENTION, RUNS_RETENTION_ENV, format_duration
from ..errors import ConfigError
from ..progress import QUIET
from .edge import err, settings
from .options import DatabaseUrl, FormatOption, OutboxRetention, Schema, duration
from .progress import Bar, on_terminal
from .render import Format, render


def prune(
    runs_older_than: Annotated[
        str | None,
        typer.Option(
            "--runs-older-than",
            metavar="DURATION",
            help="Delete the runs of _runs that started longer ago than this (90d, 12w); the "
            f"newest run of each command stays. Default: ${RUNS_RETENTION_ENV} or "
            f"{format_duration(DEFAULT_RUNS_RETENTION)}.",
            show_default=False,
        ),
    ] = None,
    outbox_retention: OutboxRetention = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Delete old _runs rows and the _outbox rows Segment accepted long ago, in batches (for a timer)."""
    from .. import commands

    options = settings(
        database_url,
        schema,
        runs_retention=duration(runs_older_than, option="--runs-older-than"),
        outbox_retention=duration(outbox_retention, option="--outbox-retention"),
    )
    render(commands.prune(options, dry_run=dry_run, announce=err), fmt)


def archive(
    before: Annotated[
        str,
        typer.Option(
            "--before",
            metavar="DATE",
            help="Archive the raw events of every whole month before this UTC date "
            "(YYYY-MM-DD); a date inside a month keeps that month.",
            show_default=False,
        ),
    ],
    to: Annotated[
        Path,
        typer.Option(
            "--to",
            metavar="DIR",
            help="Directory for raw-YYYY-MM.ndjson.gz and rejects-YYYY-MM.ndjson.gz (made if "
            "missing).",
            show_default=False,
        ),
    ],
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Move raw events of past months to checked gzip NDJSON files; tables keep their rows."""
    from .. import commands

    try:
        cutoff = date.fromisoformat(before)
    except ValueError:
        raise ConfigError(
            f"--before must be a date such as 2026-10-01 (YYYY-MM-DD), got {before!r}"
        ) from None
    if to.exists() and not to.is_dir():
        raise ConfigError(f"--to {to} is a file: give a directory (it is made if missing)")
    options = settings(database_url, schema)
    with on_terminal(Bar) as progress:
        report = commands.archive(
            options, before=cutoff, to=to, progress=progress or QUIET, announce=err
        )
    render(report, fmt)
