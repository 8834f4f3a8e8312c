"""Warehouse facts as text for a person: times with their zone, stored input made safe.

Rejected records are whatever a sender sent: a terminal must never receive their control
characters (an escape sequence can rewrite the screen or the title bar), so every piece of
stored input is passed through :func:`printable` before it is shown.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""C0 and C1 controls (but tab and newline), DEL, and the line and bidirectional-override
marks that can make a line read as something else."""
_CONTROL_OR_BREAK = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def utc_text(value: datetime) -> str:
    """``value`` in UTC to the second, with its zone: ``2026-12-05 09:12:03 UTC``."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return {9: "\\t", 10: "\\n", 13: "\\r"}.get(code) or (
        f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    )


def printable(value: str, *, lines: bool = False) -> str:
    """``value`` with every control character escaped (``\\x1b``, ``\\u202e``); tabs and
    newlines are kept when ``lines`` is true (a body shown whole), else escaped too."""
    return (_CONTROL if lines else _CONTROL_OR_BREAK).sub(_escape, value)


def head(value: str, width: int) -> str:
    """The start of ``value`` on one printable line, at most ``width`` characters, ending
    in ``…`` when cut."""
    line = printable(value)
    return line if len(line) <= width else line[: width - 1] + "…"
