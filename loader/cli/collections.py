"""The collections group: list, enable, disable."""

from __future__ import annotations

from typing import Annotated

import typer

from ..domain.registry import DEFAULT_ON, OPT_IN
from ..errors import ConfigError
from .edge import Commands, err, settings
from .options import CollectionNames, DatabaseUrl, FormatOption, Schema
from .render import Format, render

collections_app = Commands(
    help=f"Which Drip events the warehouse maps into tables: the {len(DEFAULT_ON)} email "
    f"collections (on by default) and {len(OPT_IN)} opt-in ones.",
    no_args_is_help=True,
)


@collections_app.command("list")
def collections_list(
    database_url: DatabaseUrl = None, schema: Schema = None, fmt: FormatOption = Format.table
) -> None:
    """Every collection, its Drip event(s), whether it is on, and its rows."""
    from .. import commands

    render(commands.collections(settings(database_url, schema), announce=err), fmt)


@collections_app.command("enable")
def collections_enable(
    names: CollectionNames = None,
    all_: Annotated[bool, typer.Option("--all", help="Every collection.")] = False,
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Turn collections on: new events are mapped, and those already landed are backfilled
    (once; safe while load and serve run)."""
    from .. import commands

    if all_ and names:
        raise ConfigError("give collection names or --all, not both")
    wanted = None if all_ else (names or [])
    render(commands.enable(settings(database_url, schema), wanted, announce=err), fmt)


@collections_app.command("disable")
def collections_disable(
    names: CollectionNames = None,
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Turn collections off: new events of their types are kept raw only; rows stay."""
    from .. import commands

    render(commands.disable(settings(database_url, schema), names or [], announce=err), fmt)
