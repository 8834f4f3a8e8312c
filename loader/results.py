"""What a command returns: a result that renders itself for a person, a CSV reader and a
JSON reader, so that every command prints the same three ways (dlt's ``LoadInfo.asstr``).

Every result has :meth:`~Result.as_dict` (plain JSON values), :meth:`~Result.lines` (the
text for a person) and :meth:`~Result.rows` (its rows, for CSV).  A result that *is* a
table (a report, a query, the collection list) is a :class:`Rows`: its JSON is the list
of its rows.  A result that is one record (a run's counts, the warehouse status) derives
from :class:`Record`: its CSV rows are its facts, one ``(name, value)`` each.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol


class Result(Protocol):
    """What every command's library call returns."""

    def as_dict(self) -> dict[str, Any]:
        """Every fact as plain JSON values (``--format json``)."""
        ...

    def lines(self) -> list[str]:
        """The text for a person (``--format table``)."""
        ...

    def rows(self) -> Rows:
        """Its rows (``--format csv``)."""
        ...


class Record:
    """A result that is one record: its rows are its facts, one ``(name, value)`` each, named
    by their path in :meth:`as_dict` (``rows_added.email_opened``, ``last_runs.0.status``)."""

    def as_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def rows(self) -> Rows:
        found: list[tuple[str, Any]] = []
        _flatten("", self.as_dict(), found)
        return Rows(("name", "value"), found)


def _flatten(name: str, value: Any, found: list[tuple[str, Any]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{name}.{key}" if name else str(key), item, found)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, item in enumerate(value):
            _flatten(f"{name}.{i}", item, found)
    else:
        found.append((name, value))


@dataclass(frozen=True)
class Rows:
    """Named columns and rows of plain values (None is NULL)."""

    columns: tuple[str, ...]
    values: Sequence[tuple[Any, ...]] = field(default_factory=tuple)

    def records(self) -> list[dict[str, Any]]:
        """One ``{column: JSON value}`` per row: a table's JSON."""
        return [
            {c: json_value(v) for c, v in zip(self.columns, row, strict=True)}
            for row in self.values
        ]

    def as_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "rows": self.records()}

    def lines(self) -> list[str]:
        """Aligned columns: numbers to the right, text to the left, NULL blank."""
        if not self.values:
            return ["(no rows)"]
        cells = [[cell_text(v) for v in row] for row in self.values]
        numeric = [
            all(_is_number(row[i]) for row in self.values if row[i] is not None)
            for i in range(len(self.columns))
        ]
        widths = [
            max(len(name), *(len(row[i]) for row in cells)) for i, name in enumerate(self.columns)
        ]

        def line(values: Sequence[str]) -> str:
            return "  ".join(
                v.rjust(w) if right else v.ljust(w)
                for v, w, right in zip(values, widths, numeric, strict=True)
            ).rstrip()

        return [line(self.columns), *(line(row) for row in cells)]

    def rows(self) -> Rows:
        return self

    def csv_rows(self) -> Iterator[list[str]]:
        """The header, then each row as text (NULL empty)."""
        yield list(self.columns)
        for row in self.values:
            yield [cell_text(v) for v in row]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def cell_text(value: Any) -> str:
    """A value as one table or CSV cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(cell_text(v) for v in value)
    return str(value)


def json_value(value: Any) -> Any:
    """A value as plain JSON: times as ISO 8601 text, decimals as numbers, tuples as lists."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return value
