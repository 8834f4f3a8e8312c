"""Help that reads like a good CLI's: a value's name after an option, never its Python type.

The installed Typer prints every parameter's type (``--debug <bool>``, ``paths...
<list[str]>``, ``sql [OPTIONS] {query}``).  The command classes here give each parameter
that names no metavar of its own a plain one: nothing for a flag, the choices for a choice,
the argument's name for an argument, and a word for the kind of value otherwise; and the
usage line names the arguments the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

_KINDS: dict[Any, str] = {int: "N", float: "SECONDS", str: "TEXT", Path: "FILE"}
"""The name of a value by its type (every float option of drip-loader is a duration)."""


def _metavar(param: Any) -> str:
    if isinstance(param, TyperOption) and param.is_flag:
        return ""
    descriptor = getattr(param, "type_descriptor", None)
    choices = getattr(descriptor, "choices", None)
    if choices:
        return "|".join(str(getattr(c, "value", c)) for c in choices)
    if isinstance(param, TyperArgument):
        return (param.name or "value").upper() + ("..." if param.nargs != 1 else "")
    return _KINDS.get(getattr(descriptor, "annotation", str), "TEXT")


def _plain(params: list[Any]) -> None:
    for param in params:
        if param.metavar is None:
            param.metavar = _metavar(param)
        if isinstance(param, TyperArgument):
            # An argument's help row shows its type beside its name, metavar or not.
            param.display_type_rich = _no_type  # type: ignore[method-assign]


def _no_type(ctx: Any) -> None:
    return None


def _usage(command: TyperCommand, ctx: Any) -> list[str]:
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if isinstance(param, TyperArgument):
            name = param.metavar or (param.name or "").upper()
            pieces.append(name if param.required else f"[{name}]")
    return pieces


class HelpCommand(TyperCommand):
    """A command whose help shows value names, not Python types."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            _plain([option])
        return option

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return _usage(self, ctx)


class HelpGroup(TyperGroup):
    """A group whose help shows value names, not Python types."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            _plain([option])
        return option
