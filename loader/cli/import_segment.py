"""``import-segment``: copy the history of Segment's Drip source into the warehouse."""

from __future__ import annotations

from typing import Annotated

import typer

from ..config import DEFAULT_IMPORT_BATCH_SIZE
from .edge import err, settings
from .options import DatabaseUrl, FormatOption, Schema
from .progress import bar
from .render import Format, render


def import_segment(
    from_schema: Annotated[
        str,
        typer.Option(
            "--from-schema",
            metavar="NAME",
            help="The schema Segment's Drip source wrote (same database); only read.",
            show_default=False,
        ),
    ],
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="TIME",
            help="Copy only rows before this UTC date or time, for every event type. Default: "
            "per event type, the first event drip-loader itself received (as recorded by the "
            "first run).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Say what would be copied, per table, and the cutoffs; copy nothing."
        ),
    ] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Rows copied per transaction.")
    ] = DEFAULT_IMPORT_BATCH_SIZE,
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Copy the history of Segment's Drip source (its six email tables and their tracks rows)
    into the warehouse schema, up to when drip-loader took over; safe to run again."""
    from .. import commands

    options = settings(database_url, schema)
    with bar() as progress:
        report = commands.import_segment(
            options,
            source_schema=from_schema,
            until=until,
            dry_run=dry_run,
            batch_size=batch_size,
            progress=progress,
            announce=err,
        )
    render(report, fmt)
