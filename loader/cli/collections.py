"""The collections group: list, enable, disable."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ..errors import ConfigError
from .edge import database as _database
from .edge import guard as _guard
from .edge import settings as _settings
from .options import CollectionNames, DatabaseUrl, JsonFlag, Schema

collections_app = typer.Typer(
    help="Which Drip events the warehouse maps into tables: the six email collections "
    "(on by default) and 22 opt-in ones (see the README's Collections).",
    no_args_is_help=True,
)


@collections_app.command("list")
def collections_list(
    database_url: DatabaseUrl = None, schema: Schema = None, as_json: JsonFlag = False
) -> None:
    """Every collection, its Drip event(s), whether it is on, and its rows."""
    from ..warehouse.collections import list_collections

    def action() -> list[Any]:
        settings = _settings(database_url, schema)
        with _database(settings) as engine:
            return list_collections(engine, schema=settings.schema)

    states = _guard(action)
    if as_json:
        rows = [{**vars(s), "drip_events": list(s.drip_events)} for s in states]
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    typer.echo(f"  {'collection':<42}{'':<5}{'rows':>12}  Drip event(s)")
    for s in states:
        on = "on" if s.enabled else "off"
        typer.echo(f"  {s.name:<42}{on:<5}{s.rows:>12,}  {', '.join(s.drip_events)}")


def _print_change(change: Any, *, verb: str) -> None:
    if change.changed:
        typer.echo(f"Turned {verb}: {', '.join(change.changed)}")
    if change.unchanged:
        typer.echo(f"Already {verb}: {', '.join(change.unchanged)}")
    for table, added in sorted(change.rows_added.items()):
        typer.echo(f"  backfilled {table:<42}{added:>12,}")


@collections_app.command("enable")
def collections_enable(
    names: CollectionNames = None,
    all_: Annotated[bool, typer.Option("--all", help="Every collection.")] = False,
    database_url: DatabaseUrl = None,
    schema: Schema = None,
) -> None:
    """Turn collections on: new events are mapped, and those already landed are backfilled
    (once; safe while load and serve run)."""
    from ..domain.registry import resolve
    from ..warehouse.collections import enable_collections

    def action() -> Any:
        if all_ and names:
            raise ConfigError("give collection names or --all, not both")
        wanted = None if all_ else resolve(names or [])
        settings = _settings(database_url, schema)
        with _database(settings) as engine:
            return enable_collections(engine, schema=settings.schema, names=wanted)

    _print_change(_guard(action), verb="on")


@collections_app.command("disable")
def collections_disable(
    names: CollectionNames = None, database_url: DatabaseUrl = None, schema: Schema = None
) -> None:
    """Turn collections off: new events of their types are kept raw only; rows stay."""
    from ..domain.registry import resolve
    from ..warehouse.collections import disable_collections

    def action() -> Any:
        wanted = resolve(names or [])
        settings = _settings(database_url, schema)
        with _database(settings) as engine:
            return disable_collections(engine, schema=settings.schema, names=wanted)

    _print_change(_guard(action), verb="off")
