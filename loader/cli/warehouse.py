"""Warehouse commands: migrate, status, sql, psql, connection."""

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


def connection(
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    show_password: Annotated[
        bool, typer.Option("--show-password", help="Print the password too (it is a secret).")
    ] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """How a BI tool (Metabase, DBeaver, ...) connects to the warehouse.

    Host, port, database, user, and where the password is kept. The embedded server takes TCP connections only with DRIP_LOADER_EMBEDDED_PORT set (on 127.0.0.1)."""
    from .. import commands

    render(commands.connection(settings(database_url, schema), reveal=show_password), fmt)
