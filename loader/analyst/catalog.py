"""The analyst reports and how their options read, without I/O: what the CLI lists (so
``--help`` imports nothing heavy) and what :mod:`loader.analyst.report` and
:mod:`loader.analyst.attribution` run.  One list, read by both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from ..errors import ConfigError


@dataclass(frozen=True)
class ViewReport:
    """One ``drip-loader report NAME`` that reads an analyst view."""

    view: str
    query: str
    """File under ``sql/`` that selects from the view, filtered by ``:since``/``:until``."""
    summary: str
    """What it shows (the command's help)."""
    rates: tuple[str, ...] = ()
    """Ratio columns, rounded to 4 decimals for reading (the view keeps them exact)."""


REPORTS: dict[str, ViewReport] = {
    "email-performance": ViewReport(
        "email_performance",
        "report/email_performance.sql",
        "One row per email: sends, opens, clicks, bounces, spam reports and rates.",
        rates=("open_rate", "click_rate", "click_to_open_rate"),
    ),
    "daily": ViewReport(
        "daily_email_activity", "report/daily.sql", "Events and people per UTC day and event."
    ),
    "unsubscribes": ViewReport(
        "campaign_unsubscribes",
        "report/unsubscribes.sql",
        "Unsubscribes per campaign, plus a row without campaign for unsubscribe-from-all.",
    ),
}
"""Report name (as typed on the command line) → what it reads."""


def view_report(name: str) -> ViewReport:
    """The view report called ``name``.

    Raises:
        ConfigError: there is none.
    """
    try:
        return REPORTS[name]
    except KeyError:
        raise ConfigError(f"unknown report {name!r}: use one of {', '.join(REPORTS)}") from None


Touch = Literal["click", "open"]
"""What counts as an email touch for attribution."""
TOUCHES: dict[Touch, str] = {"click": "email_link_clicked", "open": "email_opened"}
"""Attribution's ``--touch`` → the collection table whose events are touches."""
DEFAULT_TOUCH: Touch = "click"
DEFAULT_WINDOW = "7d"
"""How long before a conversion a touch counts, by default."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_WINDOW = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


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


@dataclass(frozen=True)
class Window:
    """``[since, until)``, either end open when None."""

    since: datetime | None = None
    until: datetime | None = None


def parse_range(since: str | datetime | None, until: str | datetime | None) -> Window:
    """``--since``/``--until`` as the window ``[since, until)``.

    Raises:
        ConfigError: a bound is not a date or time, or the window is empty.
    """
    start = parse_bound(since, option="--since")
    end = parse_bound(until, option="--until")
    if start is not None and end is not None and end <= start:
        raise ConfigError(
            f"--until ({end.isoformat()}) must be after --since ({start.isoformat()})"
        )
    return Window(start, end)


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


def check_name(value: str, *, option: str) -> str:
    """``value`` if it is a plain identifier (letters, digits, _).

    Raises:
        ConfigError: it is not.
    """
    if not _NAME.match(value):
        raise ConfigError(
            f"{option} {value!r} is not a plain identifier (letters, digits, _): e.g. revenue"
        )
    return value


@dataclass(frozen=True)
class Attribution:
    """What ``report attribution`` asks, every option checked (no database needed)."""

    conversions: tuple[str, str]
    """(schema, table) of the conversions, in Segment's warehouse layout."""
    touch: Touch = DEFAULT_TOUCH
    event: str | None = None
    value_column: str | None = None
    window: timedelta = timedelta(days=7)
    span: Window = Window()
    """Conversions counted: ``[since, until)``."""


def attribution(
    *,
    conversions: str,
    touch: Touch = DEFAULT_TOUCH,
    event: str | None = None,
    value_column: str | None = None,
    window: str | timedelta = DEFAULT_WINDOW,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
) -> Attribution:
    """The options of ``report attribution`` checked and parsed.

    Raises:
        ConfigError: ``conversions`` is not ``SCHEMA.TABLE`` of plain identifiers, an
            unknown touch, an empty event, a value column that is not an identifier, or a
            bad window or range.
    """
    parts = conversions.split(".")
    if len(parts) != 2 or not all(_NAME.match(part) for part in parts):
        raise ConfigError(
            f"--conversions {conversions!r} is not SCHEMA.TABLE of plain identifiers "
            "(letters, digits, _): e.g. website.order_completed"
        )
    if touch not in TOUCHES:
        raise ConfigError(f"--touch {touch!r}: use {' or '.join(TOUCHES)}")
    if event is not None and not event.strip():
        raise ConfigError("--event is empty: name the conversion event, e.g. 'Order Completed'")
    if value_column is not None:
        check_name(value_column, option="--value-column")
    return Attribution(
        conversions=(parts[0], parts[1]),
        touch=touch,
        event=event,
        value_column=value_column,
        window=parse_window(window),
        span=parse_range(since, until),
    )
