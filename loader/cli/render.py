"""Print a command's result the same way everywhere: ``--format table|csv|json``, to stdout
or to ``--out``.

``table`` is the result's text for a person (:meth:`~loader.results.Result.lines`);
``csv`` its rows (:meth:`~loader.results.Result.rows`); ``json`` its facts
(:meth:`~loader.results.Result.as_dict`), or, for a result that is a table, the list of its
rows.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

import typer

from ..errors import ConfigError
from ..results import Result, Rows
from .edge import err


class Format(StrEnum):
    """How a command prints its result: for a person, or for a script."""

    table = "table"
    csv = "csv"
    json = "json"


def text(result: Result, fmt: Format) -> str:
    """``result`` as ``fmt``, ending in a newline."""
    if fmt is Format.json:
        data = result.records() if isinstance(result, Rows) else result.as_dict()
        return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    if fmt is Format.csv:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(result.rows().csv_rows())
        return buffer.getvalue()
    return "".join(line + "\n" for line in result.lines())


def render(result: Result, fmt: Format, *, out: Path | None = None) -> None:
    """Print ``result`` as ``fmt`` on stdout, or write it to ``out`` (and say so on stderr)."""
    write(text(result, fmt), out)
    if out is not None:
        err(f"Wrote {len(result.rows().values):,} row(s) to {out}")


def check_out(out: Path | None) -> None:
    """Refuse an ``--out`` that cannot be written, before anything runs.

    Raises:
        ConfigError: it is a directory, or its directory does not exist or is read-only.
    """
    if out is None:
        return
    folder = out.parent
    if out.is_dir():
        raise ConfigError(f"cannot write {out}: it is a directory; give a file name")
    if not folder.is_dir():
        raise ConfigError(f"cannot write {out}: no directory {folder}; create it first")
    if not os.access(folder, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ConfigError(f"cannot write {out}: permission denied; pick another --out")


def write(content: str, out: Path | None) -> None:
    """``content`` on stdout, or in the file ``out``."""
    if out is None:
        typer.echo(content, nl=False)
        return
    with opened(out) as handle:
        handle.write(content.encode("utf-8"))


@contextmanager
def opened(out: Path) -> Iterator[BinaryIO]:
    """``out`` open for writing; a failure is a :class:`ConfigError` naming it.

    Raises:
        ConfigError: the file cannot be created or written.
    """
    try:
        with open(out, "wb") as handle:
            yield handle
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror}") from None
