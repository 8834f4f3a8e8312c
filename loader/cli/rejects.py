"""The rejects group: list, show, retry (records that could not be loaded, and why)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..config import DEFAULT_MAX_RECORD_BYTES, DEFAULT_REJECTS_LIMIT
from .edge import Commands, err, settings
from .options import DatabaseUrl, FormatOption, Schema
from .progress import count_bar
from .render import Format, render

rejects_app = Commands(
    help="Records that could not be loaded, with the reason: list them, read one, and retry "
    "them after a fix.",
    no_args_is_help=True,
)

RejectedSince = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="TIME",
        help="Only rejects rejected at or after this UTC date or time "
        "(2026-10-01 or 2026-10-01T12:00:00Z). Default: no bound.",
        show_default=False,
    ),
]


@rejects_app.command("list")
def rejects_list(
    since: RejectedSince = None,
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason",
            metavar="TEXT",
            help="Only rejects whose reason contains this text (any case).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", help="Show at most this many.")
    ] = DEFAULT_REJECTS_LIMIT,
    landed: Annotated[
        bool, typer.Option("--landed", help="Also list the rejects a retry has landed.")
    ] = False,
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Rejected records, newest first: id, when, where from, why, size, and how the body starts."""
    from .. import commands

    result = commands.rejects(
        settings(database_url, schema),
        since=since,
        reason=reason,
        limit=limit,
        landed=landed,
        announce=err,
    )
    render(result, fmt)


@rejects_app.command("show")
def rejects_show(
    reject_id: Annotated[
        int, typer.Argument(metavar="ID", help="The reject's id, as `rejects list` shows it.")
    ],
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    fmt: FormatOption = Format.table,
) -> None:
    """One reject: its body (pretty when it is JSON), origin, reason and retries."""
    from .. import commands

    render(commands.reject(settings(database_url, schema), reject_id, announce=err), fmt)


RETRY_HELP = (
    "Validate rejects again and land those that pass now.\n\n"
    "Each goes through the same checks as load (this version's, and --max-record-bytes). "
    "One that passes lands once, as if loaded now with its origin kept, and is marked "
    "landed; one that fails keeps its row with the current reason. A reject cut at the "
    "size limit is never landed. Safe beside load, serve and another retry."
)


@rejects_app.command("retry", help=RETRY_HELP)
def rejects_retry(
    ids: Annotated[
        list[int] | None,
        typer.Argument(metavar="ID...", help="Ids of the rejects to retry.", show_default=False),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every reject still rejected.")] = False,
    since: RejectedSince = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would land, and change nothing.")
    ] = False,
    max_record_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-record-bytes",
            min=1,
            help="Reject records larger than this, as load does. Default: "
            f"$DRIP_LOADER_MAX_RECORD_BYTES or {DEFAULT_MAX_RECORD_BYTES:,}.",
            show_default=False,
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Validate rejects again and land those that pass now."""
    from .. import commands

    options = settings(database_url, schema, max_record_bytes=max_record_bytes)
    with count_bar("rejects") as progress:
        report = commands.retry(
            options,
            ids or [],
            every=all_,
            since=since,
            dry_run=dry_run,
            announce=err,
            progress=progress,
        )
    render(report, fmt)
