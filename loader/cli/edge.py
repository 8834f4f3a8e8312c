"""The CLI's one error edge, and what every command shares to reach the library.

A :class:`~loader.errors.LoaderError` becomes one ``Error: ...`` line on stderr and exit 1;
Ctrl-C and SIGTERM exit 130 and 143 with what was committed kept; ``--debug`` (before or
after the command name) shows the traceback instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
import typer

from ..config import Settings
from ..errors import LoaderError, Terminated

T = TypeVar("T")


def debugging() -> bool:
    """Whether ``--debug`` was given (the root command's option)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().params.get("debug"))


def err(line: str) -> None:
    """Print one line on stderr."""
    typer.echo(line, err=True)


def settings(database_url: str | None, schema: str | None, **extra: Any) -> Settings:
    """The command's :class:`Settings`: its options over the environment over the defaults."""
    return Settings.from_env(database_url=database_url, schema=schema, **extra)


def schema_name(schema: str | None) -> str:
    """The schema a command used, as Settings resolves it (option, environment, default)."""
    return Settings.from_env(schema=schema).schema


def guard(action: Callable[[], T]) -> T:
    """Run ``action``; turn loader errors into one line on stderr and exit 1."""
    if debugging():
        return _guarded(action)
    from ..warehouse.db import no_driver_echo

    with no_driver_echo():
        return _guarded(action)


def _guarded(action: Callable[[], T]) -> T:
    try:
        return action()
    except LoaderError as exc:
        if debugging():
            raise
        err(f"Error: {exc}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt as exc:
        err("Interrupted: committed chunks are kept; run the same command again to finish.")
        # 128 + the signal number, as a shell reports a process the signal stopped
        raise typer.Exit(143 if isinstance(exc, Terminated) else 130) from None


@contextmanager
def database(settings: Settings) -> Iterator[Any]:
    """An engine on the warehouse of ``settings`` (the embedded server started if needed)."""
    from ..warehouse.db import open_database

    with open_database(settings, announce=err) as engine:
        yield engine
