"""The collections group: list, enable, disable."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..errors import ConfigError
from .edge import Commands, err, settings
from .options import CollectionNames, DatabaseUrl, FormatOption, Schema
from .render import Format, render

collections_app = Commands(
    help="Which Drip events the warehouse maps into tables: the email collections (on by "
    "default) and every other Drip event (opt-in).",
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
    """Turn collections on: new events are mapped, those already landed backfilled (once).

    Safe while load and serve run.
    """
    from .. import commands

    if all_ and names:
        raise ConfigError("give collection names or --all, not both")
    wanted = None if all_ else (names or [])
    render(commands.enable(settings(database_url, schema), wanted, announce=err), fmt)


@collections_app.command("disable")
def collections_disable(
    names: CollectionNames = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", help="Turn an email collection off without asking (the reports undercount)."
        ),
    ] = False,
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Turn collections off: new events of their types are kept raw only; rows stay."""
    from .. import commands

    def confirm(warning: str) -> bool:
        if not yes and not sys.stdin.isatty():
            return False  # refused, with a line saying to add --yes
        err(f"Warning: {warning}.")
        if yes:
            return True
        # The question and its answer stay off stdout, which may be read by a script.
        typer.echo("Go ahead? [y/N] ", err=True, nl=False)
        if sys.stdin.readline().strip().lower() in ("y", "yes"):
            return True
        err("Nothing changed.")
        raise typer.Exit(1)

    change = commands.disable(
        settings(database_url, schema), names or [], confirm=confirm, announce=err
    )
    render(change, fmt)
