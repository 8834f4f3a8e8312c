"""Down-funnel attribution: which Drip emails led to conversions in another Segment source.

``run_attribution`` credits each conversion (a row of a table in Segment's warehouse
layout, e.g. ``website.order_completed``) to the latest click (or open) of the same person
within a window before it, and sums the credit per email (``sql/report/attribution.sql``).
The conversions table, its columns and the ``identifies`` table beside it are named by
the user: every name is checked to be a plain identifier, looked up in the catalog with
bound parameters and quoted by the dialect, never formatted into SQL as typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from ..errors import ConfigError
from ..results import Rows
from ..warehouse.db import translating
from ..warehouse.sqlfiles import read_sql
from .catalog import TOUCHES, Attribution
from .report import query_table, readable, rounded

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


@dataclass(frozen=True)
class _Relation:
    schema: str
    table: str
    columns: dict[str, str]
    """Column name → its type category (``N`` numeric, ``D`` date/time, ...)."""


def _relation(conn: Connection, schema: str, table: str) -> _Relation | None:
    rows = conn.execute(
        text(read_sql("report/attribution_columns.sql")), {"schema": schema, "table": table}
    ).all()
    if not rows:
        return None
    return _Relation(schema, table, {str(name): str(category) for name, category in rows})


def _conversions(conn: Connection, question: Attribution) -> _Relation:
    """The conversions table, checked to have what the report needs."""
    (schema, table), event, value_column = (
        question.conversions,
        question.event,
        question.value_column,
    )
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


def attribution_query(conn: Connection, *, schema: str, question: Attribution) -> tuple[str, bool]:
    """The attribution SQL with every name checked and quoted, and whether identifies is used.

    Raises:
        ConfigError: a table or column that does not exist or cannot apply, or a schema
            not migrated.
    """
    found = _conversions(conn, question)
    touch_table = TOUCHES[question.touch]
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
        "c_value": column("c", question.value_column, found),
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


def run_attribution(engine: Engine, question: Attribution, *, schema: str) -> Rows:
    """Last-touch attribution of ``question``'s conversions to the emails of ``schema``.

    One row per email touched in ``[since - window, until)`` (columns :data:`COLUMNS`),
    then a row with ``email_id`` NULL and ``email_subject`` ``(unattributed)`` counting the
    conversions in ``[since, until)`` that no touch explains.  Rates and hours are
    rounded to 4 decimals; times are the warehouse's (UTC).

    Raises:
        ConfigError: a conversions table that does not exist or lacks ``timestamp`` and an
            identity column, a value column or event that cannot apply, or a schema that is
            not migrated.
        DatabaseError: the query failed.
    """
    with translating(), engine.connect() as conn:
        query, has_identifies = attribution_query(conn, schema=schema, question=question)
    params: dict[str, Any] = {
        "since": question.span.since,
        "until": question.span.until,
        "window": question.window,
        "event": question.event,
        "has_value": question.value_column is not None,
        "has_identifies": has_identifies,
    }
    table = query_table(engine, query, schema=schema, params=params, settings=PLANNER)
    counts = dict.fromkeys(_COUNTS, _count)
    return readable(table, {**counts, **dict.fromkeys(_DECIMALS, rounded)})


def _count(value: Any) -> int | None:
    return None if value is None else int(value)
