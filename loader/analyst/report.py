"""Analyst queries as :class:`~loader.results.Rows` results: any read-only query (the ``sql``
command), and the reports read from the analyst views (``sql/views``) through
``sql/report/*.sql`` (``drip-loader report``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from ..errors import ConfigError
from ..results import Rows
from ..warehouse.db import set_search_path, translating
from ..warehouse.sqlfiles import read_sql
from .catalog import ViewReport, Window


def query_table(
    engine: Engine,
    sql: str,
    *,
    schema: str,
    params: Mapping[str, Any] | None = None,
    settings: Mapping[str, str] | None = None,
) -> Rows:
    """Run one analyst query (bare table names resolve in ``schema``) in a read-only transaction.

    ``settings`` are server settings for that transaction only (``set_config(..., true)``).
    A statement that returns no rows gives a table without columns.
    """
    with translating(), engine.connect() as conn:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        set_search_path(conn, schema)
        for name, value in (settings or {}).items():
            conn.execute(
                text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value}
            )
        result = conn.execute(text(sql), dict(params or {}))
        if not result.returns_rows:
            return Rows(())
        return Rows(tuple(result.keys()), [tuple(row) for row in result])


def run_report(engine: Engine, report: ViewReport, *, schema: str, window: Window) -> Rows:
    """One analyst report: the rows of its view whose activity overlaps ``window``.

    The window is days for ``daily``, the span from an email's first to its last event for
    ``email-performance``, from a campaign's first to its last unsubscribe for
    ``unsubscribes``.  Figures are those of the view (all time).  Times come out as UTC
    ISO 8601 text, days as ``YYYY-MM-DD``, rates rounded to 4 decimals (None when the view
    has NULL).

    Raises:
        ConfigError: the schema has no such view (not migrated to 0002 yet).
        DatabaseError: the query failed.
    """
    with translating(), engine.connect() as conn:
        found = conn.execute(text("SELECT to_regclass(:name)"), {"name": f"{schema}.{report.view}"})
        if found.scalar_one() is None:
            raise ConfigError(
                f"schema {schema!r} has no view {report.view}: run `drip-loader migrate` first"
            )
    table = query_table(
        engine,
        read_sql(report.query),
        schema=schema,
        params={"since": window.since, "until": window.until},
    )
    return readable(table, dict.fromkeys(report.rates, rounded))


def readable(table: Rows, convert: Mapping[str, Callable[[Any], Any]]) -> Rows:
    """Plain, portable values: ``convert`` per column, else times as UTC text (``...Z``) and
    days as ``YYYY-MM-DD``; what a terminal, a CSV reader and a JSON reader all take as is."""
    steps = [convert.get(column, _plain) for column in table.columns]
    return Rows(
        table.columns,
        [tuple(step(v) for step, v in zip(steps, row, strict=True)) for row in table.values],
    )


def rounded(value: Any) -> float | None:
    """A ratio rounded to 4 decimals for reading."""
    return None if value is None else round(float(Decimal(value)), 4)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value
