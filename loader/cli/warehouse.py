"""Warehouse commands: migrate, status, sql, psql."""

from __future__ import annotations

import json
import subprocess
from typing import Annotated, Any

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
    if "storage" in info:  # its own section: loader.warehouse.storage renders it
        from ..warehouse.storage import storage_lines

        for line in storage_lines(info["storage"]):
            typer.echo(line)


def _drip_sync_line(info: dict[str, Any]) -> str:
    """The ``Drip sync:`` line of ``status``."""
    last = info["last"]
    rows = ", ".join(f"{table} {n:,}" for table, n in info["rows"].items())
    if last is None:
        return f"Drip sync: never (run `drip-loader drip sync`); {rows}"
    state = last["status"] + (f" ({last['error']})" if last["error"] else "")
    return f"Drip sync: {last['started_at'][:19]} {state}; {rows}"


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
