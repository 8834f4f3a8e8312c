"""Query results as pandas DataFrames: the only module that imports pandas (lazily).

``query_frame`` runs any read-only query (the ``sql`` command); ``run_report`` reads one of
the analyst views (``sql/views``) through ``sql/report/*.sql`` for ``drip-loader report``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from ..errors import ConfigError
from ..warehouse.db import set_search_path, translating
from ..warehouse.sqlfiles import read_sql

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Report:
    """One ``drip-loader report`` and the view it reads."""

    view: str
    query: str
    """File under ``sql/`` that selects from the view, filtered by ``:since``/``:until``."""
    rates: tuple[str, ...] = ()
    """Ratio columns, rounded to 4 decimals for reading (the view keeps them exact)."""


REPORTS: dict[str, Report] = {
    "email-performance": Report(
        "email_performance",
        "report/email_performance.sql",
        rates=("open_rate", "click_rate", "click_to_open_rate"),
    ),
    "daily": Report("daily_email_activity", "report/daily.sql"),
    "unsubscribes": Report("campaign_unsubscribes", "report/unsubscribes.sql"),
}
"""Report name (as typed on the command line) → what it reads."""


def parse_bound(value: str | datetime | None, *, option: str) -> datetime | None:
    """A ``--since``/``--until`` value as an aware datetime; no offset means UTC.

    Raises:
        ConfigError: ``value`` is not an ISO 8601 date or date-time.
    """
    if value is None or isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(
                f"{option} {value!r} is not a date or time: use 2026-10-01 or 2026-10-01T12:00:00Z"
            ) from None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def parse_range(
    since: str | datetime | None, until: str | datetime | None
) -> tuple[datetime | None, datetime | None]:
    """``--since``/``--until`` as the window ``[since, until)``, either end open when None.

    Raises:
        ConfigError: a bound is not a date or time, or the window is empty.
    """
    start = parse_bound(since, option="--since")
    end = parse_bound(until, option="--until")
    if start is not None and end is not None and end <= start:
        raise ConfigError(
            f"--until ({end.isoformat()}) must be after --since ({start.isoformat()})"
        )
    return start, end


def query_frame(
    engine: Engine,
    sql: str,
    *,
    schema: str,
    params: Mapping[str, Any] | None = None,
    settings: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Run one analyst query (bare table names resolve in ``schema``) in a read-only transaction.

    ``settings`` are server settings for that transaction only (``set_config(..., true)``).
    """
    import pandas as pd

    with translating(), engine.connect() as conn:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        set_search_path(conn, schema)
        for name, value in (settings or {}).items():
            conn.execute(
                text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value}
            )
        result = conn.execute(text(sql), dict(params or {}))
        if not result.returns_rows:
            return pd.DataFrame()
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def render(frame: pd.DataFrame, *, fmt: str, na_rep: str = "NaN") -> str:
    """``frame`` as an aligned table, CSV or JSON (records); ``na_rep`` shows NULL in a table."""
    if fmt == "csv":
        return str(frame.to_csv(index=False))
    if fmt == "json":
        return str(frame.to_json(orient="records", date_format="iso", force_ascii=False))
    if frame.empty:
        return "(no rows)"
    return str(frame.to_string(index=False, na_rep=na_rep))


def run_report(
    engine: Engine,
    name: str,
    *,
    schema: str,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
) -> pd.DataFrame:
    """One analyst report as a DataFrame: the rows of its view whose activity overlaps the window.

    The window is ``[since, until)``, either end open when None: days for ``daily``, the
    span from an email's first to its last event for ``email-performance``, from a
    campaign's first to its last unsubscribe for ``unsubscribes``.  Figures are those of
    the view (all time).  Times come out as UTC ISO 8601 text, days as ``YYYY-MM-DD``,
    rates rounded to 4 decimals (blank when the view has NULL).

    Raises:
        ConfigError: unknown report, a bound that is not a date/time, an empty window, or a
            schema without the views (not migrated to 0002 yet).
        DatabaseError: the query failed.
    """
    report = REPORTS.get(name)
    if report is None:
        raise ConfigError(f"unknown report {name!r}: use one of {', '.join(REPORTS)}")
    start, end = parse_range(since, until)
    with translating(), engine.connect() as conn:
        found = conn.execute(text("SELECT to_regclass(:name)"), {"name": f"{schema}.{report.view}"})
        if found.scalar_one() is None:
            raise ConfigError(
                f"schema {schema!r} has no view {report.view}: run `drip-loader migrate` first"
            )
    frame = query_frame(
        engine, read_sql(report.query), schema=schema, params={"since": start, "until": end}
    )
    return _readable(frame, rates=report.rates)


def _readable(frame: pd.DataFrame, *, rates: tuple[str, ...]) -> pd.DataFrame:
    """Plain, portable values: what a terminal, a CSV reader and a JSON reader all take as is."""
    import pandas as pd

    def cell(value: Any) -> Any:
        if isinstance(value, datetime):  # also pandas.Timestamp
            return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if isinstance(value, date):
            return value.isoformat()
        return value

    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if column in rates:
            # float64 with NaN for NULL: blank in a table and a CSV, null in JSON
            out[column] = pd.Series(
                [float("nan") if v is None else round(float(Decimal(v)), 4) for v in values],
                index=out.index,
                dtype="float64",
            )
        elif values.dtype == object or isinstance(values.dtype, pd.DatetimeTZDtype):
            out[column] = pd.Series([cell(v) for v in values], index=out.index, dtype=object)
    return out


def report_text(
    engine: Engine,
    name: str,
    *,
    schema: str,
    fmt: str,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
) -> tuple[str, int]:
    """:func:`run_report` rendered as ``fmt`` (NULL blank); the text and its row count."""
    frame = run_report(engine, name, schema=schema, since=since, until=until)
    return render(frame, fmt=fmt, na_rep=""), len(frame)


def query_text(engine: Engine, sql: str, *, schema: str, fmt: str) -> str:
    """:func:`query_frame` of ``sql`` rendered as ``fmt`` (``drip-loader sql``)."""
    return render(query_frame(engine, sql, schema=schema), fmt=fmt)
