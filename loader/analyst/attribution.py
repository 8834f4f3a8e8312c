"""Down-funnel attribution: which Drip emails led to conversions in another Segment source.

``run_attribution`` credits each conversion (a row of a table in Segment's warehouse
layout, e.g. ``website.order_completed``) to the latest click (or open) of the same person
within a window before it, and sums the credit per email (``sql/report/attribution.sql``).
The conversions table, its columns and the ``identifies`` table beside it are named by
the user: every name is checked to be a plain identifier, looked up in the catalog with
bound parameters and quoted by the dialect, never formatted into SQL as typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from ..errors import ConfigError
from ..warehouse.db import translating
from ..warehouse.sqlfiles import read_sql
from .report import parse_range, query_frame, render

if TYPE_CHECKING:
    import pandas as pd

TOUCHES = {"click": "email_link_clicked", "open": "email_opened"}
"""``--touch`` → the collection table whose events are touches."""

IDENTITY_COLUMNS = ("user_id", "anonymous_id", "context_traits_email")
"""Conversion columns that can name a person; a conversions table needs at least one."""

COLUMNS = (
    "email_id",
    "email_subject",
    "touches",
    "people_touched",
    "conversions",
    "people_converted",
    "conversion_rate",
    "value",
    "median_hours_to_convert",
)
"""The report's columns, in order."""

_COUNTS = ("touches", "people_touched", "conversions", "people_converted")
_DECIMALS = ("conversion_rate", "value", "median_hours_to_convert")
PLANNER = {"jit": "off", "enable_mergejoin": "off", "work_mem": "64MB"}
"""Settings for the report's transaction.  The planner cannot estimate joins on a CTE or on
normalised emails and guesses billions of rows: it then compiles the query (JIT, seconds)
and merge-joins, sorting millions of text keys under the database collation, where hashing
them is several times faster; the hash tables of a million conversions want more than the
default 4 MB."""
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_WINDOW = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


@dataclass(frozen=True)
class _Relation:
    schema: str
    table: str
    columns: dict[str, str]
    """Column name → its type category (``N`` numeric, ``D`` date/time, ...)."""


def parse_window(value: str | timedelta) -> timedelta:
    """A ``--window`` such as ``7d``, ``24h`` or ``90m`` as a positive timedelta.

    Raises:
        ConfigError: any other form, or zero.
    """
    if isinstance(value, timedelta):
        window = value
    else:
        match = _WINDOW.match(value)
        if match is None:
            raise ConfigError(
                f"--window {value!r} is not a duration: use a number of days, hours or "
                "minutes such as 7d, 24h or 90m"
            )
        window = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if window <= timedelta(0):
        raise ConfigError(f"--window must be longer than zero, not {value!r}")
    return window


def parse_conversions(value: str) -> tuple[str, str]:
    """``SCHEMA.TABLE`` as (schema, table), each a plain identifier.

    Raises:
        ConfigError: not two dot-separated plain identifiers.
    """
    parts = value.split(".")
    if len(parts) != 2 or not all(_NAME.match(part) for part in parts):
        raise ConfigError(
            f"--conversions {value!r} is not SCHEMA.TABLE of plain identifiers "
            "(letters, digits, _): e.g. website.order_completed"
        )
    return parts[0], parts[1]


def _check_name(value: str, *, option: str) -> str:
    if not _NAME.match(value):
        raise ConfigError(
            f"{option} {value!r} is not a plain identifier (letters, digits, _): e.g. revenue"
        )
    return value


def _relation(conn: Connection, schema: str, table: str) -> _Relation | None:
    rows = conn.execute(
        text(read_sql("report/attribution_columns.sql")), {"schema": schema, "table": table}
    ).all()
    if not rows:
        return None
    return _Relation(schema, table, {str(name): str(category) for name, category in rows})


def _conversions(
    conn: Connection, value: str, *, event: str | None, value_column: str | None
) -> _Relation:
    """The conversions table, checked to have what the report needs."""
    schema, table = parse_conversions(value)
    found = _relation(conn, schema, table)
    if found is None:
        raise ConfigError(
            f"conversions table {schema}.{table} does not exist (or this user cannot read "
            "it): name a table of the same database in Segment's layout, e.g. "
            "website.order_completed"
        )
    if "timestamp" not in found.columns:
        raise ConfigError(
            f"conversions table {schema}.{table} has no timestamp column: attribution needs "
            "Segment's warehouse layout (timestamp, and user_id, anonymous_id or "
            "context_traits_email)"
        )
    if found.columns["timestamp"] != "D":
        raise ConfigError(
            f"conversions table {schema}.{table}: its timestamp column is not a date/time "
            "type, so it cannot be compared with the touches' times"
        )
    if not any(c in found.columns for c in IDENTITY_COLUMNS):
        raise ConfigError(
            f"conversions table {schema}.{table} has none of {', '.join(IDENTITY_COLUMNS)}: "
            "attribution needs at least one to know who converted"
        )
    if value_column is not None:
        _check_name(value_column, option="--value-column")
        if value_column not in found.columns:
            raise ConfigError(
                f"--value-column {value_column}: {schema}.{table} has no such column "
                f"(it has {', '.join(found.columns)})"
            )
        if found.columns[value_column] != "N":
            raise ConfigError(
                f"--value-column {value_column}: {schema}.{table}.{value_column} is not "
                "numeric, so it cannot be summed"
            )
    if event is not None and not ({"event", "event_text"} & found.columns.keys()):
        raise ConfigError(
            f"--event: {schema}.{table} has no event or event_text column to select "
            "it by; leave --event out for a table that holds one event (e.g. order_completed)"
        )
    return found


def attribution_query(
    conn: Connection,
    *,
    schema: str,
    conversions: str,
    touch: str = "click",
    event: str | None = None,
    value_column: str | None = None,
) -> tuple[str, bool]:
    """The attribution SQL with every name checked and quoted, and whether identifies is used.

    Raises:
        ConfigError: a name that is not a plain identifier, a table or column that does
            not exist or cannot apply, an unknown ``touch``, or a schema not migrated.
    """
    if touch not in TOUCHES:
        raise ConfigError(f"--touch {touch!r}: use click or open")
    if event is not None and not event.strip():
        raise ConfigError("--event is empty: name the conversion event, e.g. 'Order Completed'")
    found = _conversions(conn, conversions, event=event, value_column=value_column)
    touch_table = TOUCHES[touch]
    if _relation(conn, schema, touch_table) is None:
        raise ConfigError(
            f"schema {schema!r} has no table {touch_table}: run `drip-loader migrate` first"
        )
    identifies = _relation(conn, found.schema, "identifies")
    has_identifies = identifies is not None and bool(
        {"anonymous_id", "user_id"} & identifies.columns.keys()
        and {"email", "context_traits_email"} & identifies.columns.keys()
    )

    quote = conn.dialect.identifier_preparer.quote_identifier

    def table(schema_name: str, name: str) -> str:
        return f"{quote(schema_name)}.{quote(name)}"

    def column(alias: str, name: str | None, relation: _Relation | None) -> str:
        if name is None or relation is None or name not in relation.columns:
            return "NULL"
        return f"{alias}.{quote(name)}"

    names = {
        "conversions": table(found.schema, found.table),
        "c_timestamp": column("c", "timestamp", found),
        "c_user_id": column("c", "user_id", found),
        "c_anonymous_id": column("c", "anonymous_id", found),
        "c_email": column("c", "context_traits_email", found),
        "c_value": column("c", value_column, found),
        "c_event": column("c", "event", found),
        "c_event_text": column("c", "event_text", found),
        # without identifies, a stand-in relation that :has_identifies = false keeps empty
        "identifies": table(found.schema, "identifies" if has_identifies else found.table),
        "i_anonymous_id": column("i", "anonymous_id", identifies if has_identifies else None),
        "i_user_id": column("i", "user_id", identifies if has_identifies else None),
        "i_email": column("i", "email", identifies if has_identifies else None),
        "i_traits_email": column(
            "i", "context_traits_email", identifies if has_identifies else None
        ),
        "touch_table": table(schema, touch_table),
        "subscribers": table(schema, "subscribers"),
    }
    return read_sql("report/attribution.sql").format_map(names), has_identifies


def run_attribution(
    engine: Engine,
    *,
    schema: str,
    conversions: str,
    event: str | None = None,
    window: str | timedelta = "7d",
    touch: str = "click",
    value_column: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
) -> pd.DataFrame:
    """Last-touch attribution of ``conversions`` to the emails of ``schema``, as a DataFrame.

    One row per email touched in ``[since - window, until)`` (columns :data:`COLUMNS`),
    then a row with ``email_id`` NULL and ``email_subject`` ``(unattributed)`` counting the
    conversions in ``[since, until)`` that no touch explains.  Rates and hours are
    rounded to 4 decimals; times are the warehouse's (UTC).

    Raises:
        ConfigError: a bad option, a conversions table that does not exist or lacks
            ``timestamp`` and an identity column, a value column or event that cannot
            apply, or a schema that is not migrated.
        DatabaseError: the query failed.
    """
    span = parse_window(window)
    start, end = parse_range(since, until)
    with translating(), engine.connect() as conn:
        query, has_identifies = attribution_query(
            conn,
            schema=schema,
            conversions=conversions,
            touch=touch,
            event=event,
            value_column=value_column,
        )
    params: dict[str, Any] = {
        "since": start,
        "until": end,
        "window": span,
        "event": event,
        "has_value": value_column is not None,
        "has_identifies": has_identifies,
    }
    return _readable(query_frame(engine, query, schema=schema, params=params, settings=PLANNER))


def _readable(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts as integers (blank in the unattributed row), ratios as rounded floats."""
    import pandas as pd

    out = pd.DataFrame(index=frame.index)
    for name in COLUMNS:
        values = frame[name]
        if name in _COUNTS:
            # ints, NaN for NULL: pandas' nullable Int64 would print <NA> in a table
            out[name] = pd.Series(
                [float("nan") if v is None or v != v else int(v) for v in values],
                index=frame.index,
                dtype=object,
            )
        elif name in _DECIMALS:
            out[name] = pd.Series(
                [float("nan") if v is None else round(float(v), 4) for v in values],
                index=frame.index,
                dtype="float64",
            )
        else:
            out[name] = pd.Series(list(values), index=frame.index, dtype=object)
    return out


def attribution_text(engine: Engine, *, fmt: str, **options: Any) -> tuple[str, int]:
    """:func:`run_attribution` with ``options``, rendered as ``fmt`` (NULL blank); the text
    and its row count."""
    frame = run_attribution(engine, **options)
    return render(frame, fmt=fmt, na_rep=""), len(frame)
