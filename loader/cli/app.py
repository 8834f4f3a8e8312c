"""The ``drip-loader`` command line: it composes the command modules of this package.

Each command validates its options, makes one library call and renders the result
(:mod:`loader.cli.render`); every command is registered through
:class:`~loader.cli.edge.Commands`, so errors become one line at one edge.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from .._version import __version__
from . import (
    collections,
    drip,
    import_segment,
    pipeline,
    rejects,
    report,
    retention,
    serve,
    warehouse,
)
from .edge import Commands

app = Commands(
    name="drip-loader",
    help="Load Drip email webhook events into a Postgres warehouse laid out like Segment's.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals can hold the database password
)


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


for command in (
    warehouse.migrate,
    pipeline.load,
    warehouse.status,
    pipeline.sample,
    warehouse.sql,
    warehouse.psql,
    warehouse.connection,
    pipeline.rebuild,
    pipeline.emit,
    serve.serve,
    retention.prune,
    retention.archive,
):
    app.command()(command)
app.add_typer(report.report_app)
app.add_typer(collections.collections_app, name="collections")
app.command("dbt-sources")(report.dbt_sources)
app.add_typer(drip.drip_app)
app.add_typer(rejects.rejects_app, name="rejects")
app.command("import-segment")(import_segment.import_segment)

_GLOBAL_FLAGS = ("--debug",)


def _global_flags_first(argv: list[str]) -> list[str]:
    """Accept a global flag after the command too (``load x --debug``), as before it."""
    end = argv.index("--") if "--" in argv else len(argv)
    found = [a for a in argv[:end] if a in _GLOBAL_FLAGS]
    rest = [a for i, a in enumerate(argv) if i >= end or a not in _GLOBAL_FLAGS]
    return found + rest


def main() -> None:
    """Console-script entry point."""
    # A dead connection makes SQLAlchemy's pool log tracebacks while cleaning up; the error
    # that matters is reported once by the error edge, so the library's logs stay quiet here.
    logging.getLogger("sqlalchemy").addHandler(logging.NullHandler())
    logging.getLogger("sqlalchemy").propagate = False
    app(args=_global_flags_first(sys.argv[1:]), prog_name="drip-loader")
