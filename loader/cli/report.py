"""The report group and dbt-sources."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigError
from .edge import database as _database
from .edge import err as _err
from .edge import guard as _guard
from .edge import schema_name as _schema_name
from .edge import settings as _settings
from .options import DatabaseUrl, Format, Out, ReportFormat, Schema, Since, Touch, Until

report_app = typer.Typer(
    name="report",
    help="Print an analyst report read from the warehouse.",
    no_args_is_help=True,
)


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
