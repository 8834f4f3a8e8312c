"""Progress bars on stderr, drawn only when stderr is a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Bar:
    """A rich progress bar on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
            transient=True,
            console=Console(stderr=True),
        )
        self._task: Any = None

    def __enter__(self) -> Bar:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def start(self, description: str, total: int | None) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
        label = description if len(description) < 60 else "…" + description[-57:]
        self._task = self._progress.add_task(label, total=total)

    def advance(self, amount: int) -> None:
        self._progress.advance(self._task, amount)


class PageBar(Bar):
    """A progress bar counting pages (not bytes); waits are printed above it."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("pages"),
            TimeElapsedColumn(),
            transient=True,
            console=Console(stderr=True),
        )
        self._task = None

    def __enter__(self) -> PageBar:
        self._progress.__enter__()
        return self

    def announce(self, line: str) -> None:
        self._progress.console.print(line, markup=False, highlight=False)


@contextmanager
def bar() -> Iterator[Bar | None]:
    """A :class:`Bar` when stderr is a terminal, else None (the library's quiet default)."""
    if not sys.stderr.isatty():
        yield None
        return
    with Bar() as shown:
        yield shown


@contextmanager
def page_bar() -> Iterator[PageBar | None]:
    """A :class:`PageBar` when stderr is a terminal, else None."""
    if not sys.stderr.isatty():
        yield None
        return
    with PageBar() as shown:
        yield shown
