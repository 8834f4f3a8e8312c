"""The CLI's one error edge, and the settings every command builds from its options.

Every command is registered through :class:`Commands`, whose commands are
:class:`EdgeCommand`: a :class:`~loader.errors.LoaderError` becomes one ``Error: ...`` line on
stderr and exit 1; Ctrl-C and SIGTERM during a run exit 130 and 143 with what was
committed kept; ``--debug`` (before or after the command name) shows the traceback
instead.  Anything else is a bug and keeps its traceback (alembic's ``run_cmd``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import typer

from ..config import DripSettings, Settings
from ..errors import LoaderError, Terminated
from .help import HelpCommand, HelpGroup

F = TypeVar("F", bound=Callable[..., Any])


def err(line: str) -> None:
    """Print one line on stderr."""
    typer.echo(line, err=True)


def settings(database_url: str | None, schema: str | None, **extra: Any) -> Settings:
    """The command's :class:`Settings`: its options over the environment over the defaults."""
    return Settings.from_env(database_url=database_url, schema=schema, **extra)


def drip_settings(token: str | None, account_id: str | None, api_url: str | None) -> DripSettings:
    """The command's :class:`DripSettings`: its options over the environment."""
    return DripSettings.from_env(token=token, account_id=account_id, api_url=api_url)


class EdgeCommand(HelpCommand):
    """A command run inside the error edge (every command of drip-loader is one)."""

    def invoke(self, ctx: Any) -> Any:
        if ctx.find_root().params.get("debug"):
            return super().invoke(ctx)
        from ..warehouse.db import no_driver_echo

        try:
            with no_driver_echo():
                return super().invoke(ctx)
        except LoaderError as exc:
            err(f"Error: {exc}")
            raise typer.Exit(1) from None
        except KeyboardInterrupt as exc:
            err("Interrupted: committed chunks are kept; run the same command again to finish.")
            # 128 + the signal number, as a shell reports a process the signal stopped
            raise typer.Exit(143 if isinstance(exc, Terminated) else 130) from None


class Commands(typer.Typer):
    """A Typer app whose every command runs inside the error edge, with plain help."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=HelpGroup, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        register: Callable[[F], F] = super().command(*args, cls=EdgeCommand, **kwargs)
        return register
