"""Warehouse commands: migrate, status, sql, psql."""

from __future__ import annotations

import json
import subprocess
from typing import Annotated

import typer

from .edge import database as _database
from .edge import err as _err
from .edge import guard as _guard
from .edge import settings as _settings
from .options import DatabaseUrl, JsonFlag, Schema


def migrate(database_url: DatabaseUrl = None, schema: Schema = None) -> None:
    """Upgrade the warehouse schema to the newest revision (alembic upgrade head)."""
    from ..warehouse import migrate as migrations

    def action() -> str:
        settings = _settings(database_url, schema)
        with _database(settings) as engine:
            revision = migrations.upgrade(engine, schema=settings.schema)
            return f"Schema {settings.schema!r} is at revision {revision}."

    typer.echo(_guard(action))


def status(
    database_url: DatabaseUrl = None, schema: Schema = None, as_json: JsonFlag = False
) -> None:
    """Rows per table, pending raw events, rejects and the last runs."""
    from ..warehouse.status import WarehouseStatus, warehouse_status

    def action() -> WarehouseStatus:
        settings = _settings(database_url, schema)
        with _database(settings) as engine:
            return warehouse_status(engine, schema=settings.schema)

    info = _guard(action)
    if as_json:
        typer.echo(json.dumps(info.as_dict(), indent=2, default=str))
        return
    for line in info.lines():
        typer.echo(line)


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


def psql(database_url: DatabaseUrl = None, schema: Schema = None) -> None:
    """Open a psql shell on the warehouse (search_path set to the schema)."""
    from ..warehouse.db import psql_command

    def action() -> int:
        settings = _settings(database_url, schema)
        with _database(settings) as engine:
            argv, env = psql_command(engine, schema=settings.schema)
            return subprocess.call(argv, env=env)

    raise typer.Exit(_guard(action))
