"""Load the project's ``.sql`` files (``sql/`` in the repo, ``loader/_sql`` in the wheel)."""

from __future__ import annotations

from functools import cache
from pathlib import Path


def sql_dir() -> Path:
    """The folder holding the ``.sql`` files."""
    packaged = Path(__file__).resolve().parent.parent / "_sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "sql"


@cache
def read_sql(name: str) -> str:
    """The text of ``sql/<name>``, e.g. ``read_sql("land/stage.sql")``."""
    return (sql_dir() / name).read_text(encoding="utf-8")
