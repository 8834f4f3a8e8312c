"""Warehouse commands: migrate, status, sql, psql."""

from __future__ import annotations

from typing import Annotated

import typer

from .edge import err, settings
from .options import DatabaseUrl, FormatOption, Schema
from .render import Format, render


def migrate(
    database_url: DatabaseUrl = None, schema: Schema = None, fmt: FormatOption = Format.table
) -> None:
    """Upgrade the warehouse schema to the newest revision (alembic upgrade head)."""
    from .. import commands

    render(commands.migrate(settings(database_url, schema), announce=err), fmt)


def status(
    database_url: DatabaseUrl = None, schema: Schema = None, fmt: FormatOption = Format.table
) -> None:
    """Rows per table, pending raw events, rejects and the last runs."""
    from .. import commands

    render(commands.status(settings(database_url, schema), announce=err), fmt)


def sql(
    query: Annotated[
        str, typer.Argument(help="SQL to run read-only; bare table names resolve in the schema.")
    ],
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Query the warehouse (the embedded one too) and print the result."""
    from .. import commands

    render(commands.query(settings(database_url, schema), query, announce=err), fmt)


def psql(database_url: DatabaseUrl = None, schema: Schema = None) -> None:
    """Open a psql shell on the warehouse (search_path set to the schema)."""
    from .. import commands

    raise typer.Exit(commands.psql(settings(database_url, schema), announce=err))
