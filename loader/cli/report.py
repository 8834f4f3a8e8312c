"""The report group and dbt-sources."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from ..analyst.catalog import DEFAULT_TOUCH, DEFAULT_WINDOW, REPORTS, TOUCHES, Touch
from .edge import Commands, err, settings
from .options import DatabaseUrl, FormatOption, Out, Schema, Since, Until
from .render import Format, check_out, render, write

report_app = Commands(
    name="report",
    help="Print an analyst report read from the warehouse.",
    no_args_is_help=True,
)


def _view_report(name: str, summary: str) -> Callable[..., None]:
    """The ``report NAME`` command of one view report (they share their options)."""

    def command(
        since: Since = None,
        until: Until = None,
        fmt: FormatOption = Format.table,
        out: Out = None,
        database_url: DatabaseUrl = None,
        schema: Schema = None,
    ) -> None:
        from .. import commands

        check_out(out)
        rows = commands.report(
            settings(database_url, schema), name, since=since, until=until, announce=err
        )
        render(rows, fmt, out=out)

    command.__doc__ = summary
    return command


for _name, _report in REPORTS.items():
    report_app.command(_name)(_view_report(_name, _report.summary))


@report_app.command("attribution")
def report_attribution(
    conversions: Annotated[
        str,
        typer.Option(
            "--conversions",
            metavar="SCHEMA.TABLE",
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
            metavar="EVENT",
            help="Only conversions of this event (its event_text or event column), e.g. "
            "'Order Completed' in website.tracks. Default: every row of the table.",
            show_default=False,
        ),
    ] = None,
    window: Annotated[
        str,
        typer.Option(
            "--window",
            metavar="DURATION",
            help="How long before a conversion a touch counts: 7d, 24h or 90m.",
        ),
    ] = DEFAULT_WINDOW,
    touch: Annotated[
        Touch,
        typer.Option(
            "--touch",
            help=", ".join(f"{name} ({table})" for name, table in TOUCHES.items()) + ".",
        ),
    ] = DEFAULT_TOUCH,
    value_column: Annotated[
        str | None,
        typer.Option(
            "--value-column",
            metavar="COLUMN",
            help="Numeric column of the conversions table to sum as value (e.g. revenue). "
            "Default: none (value is NULL).",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="TIME",
            help="Only conversions at or after this UTC date or time (2026-10-01 or "
            "2026-10-01T12:00:00Z). Default: no bound.",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="TIME",
            help="Only conversions before this UTC date or time (exclusive). Default: no bound.",
            show_default=False,
        ),
    ] = None,
    fmt: FormatOption = Format.table,
    out: Out = None,
    database_url: DatabaseUrl = None,
    schema: Schema = None,
) -> None:
    """Which emails led to conversions: last touch within --window, per email."""
    from .. import commands

    check_out(out)
    rows = commands.attribution(
        settings(database_url, schema),
        conversions=conversions,
        touch=touch,
        event=event,
        value_column=value_column,
        window=window,
        since=since,
        until=until,
        announce=err,
    )
    render(rows, fmt, out=out)


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

    check_out(out)
    name = settings(None, schema).schema
    write(sources_yaml(schema=name), out)
    if out is not None:
        err(f"Wrote the dbt sources of schema {name!r} to {out}")
