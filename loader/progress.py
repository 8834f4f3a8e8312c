"""What a long run tells a progress display: the one ``Progress`` of load, rebuild and sync.

The CLI draws a bar on a terminal; library callers pass nothing and get :data:`QUIET`.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Phases and amounts of a long run."""

    def start(self, description: str, total: int | None) -> None:
        """A new phase begins; ``total`` in its unit (bytes read, events, records), if known."""

    def advance(self, amount: int) -> None:
        """``amount`` more units done."""


class _Quiet:
    def start(self, description: str, total: int | None) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass


QUIET: Progress = _Quiet()
"""A progress display that shows nothing."""
