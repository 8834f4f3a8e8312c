"""Where ``import-segment`` cuts each event type's history: its cutoffs, and the key each
table's copy goes on after.

By default an event type is cut at the earliest event time drip-loader itself has for it:
its own rows (``drip-`` ids, never a row an import copied) and its raw events (``archive``
may have moved old raw months out; a collection that is off keeps its events raw only).  A
type drip-loader has none of yet is cut where it started receiving (its first email event
of any type).  ``--until`` sets one cutoff for all.  The first run's cutoffs are recorded in
``_imports`` and kept by the runs after it, so a rerun copies what the first would have.
"""

from __future__ import annotations

from datetime import datetime
from string import Template

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..domain.registry import BY_DRIP_EVENT, BY_NAME
from ..errors import ConfigError
from ..warehouse import imports as ledger
from ..warehouse.sqlfiles import read_sql
from .import_plan import EMAIL_TABLES, TABLES, literal, part, quote
from .import_report import Cutoff

REASON_UNTIL = "--until"
REASON_FIRST = "first event of this type drip-loader received"
REASON_SWITCH = "first email event drip-loader received (none of this type yet)"
REASON_TRACKS = "the cutoff of each row's event type"


def resolve_cutoffs(
    conn: Connection, *, recorded: dict[str, ledger.LedgerRow], until: datetime | None
) -> dict[str, Cutoff]:
    """The cutoff of each email table for this run (see the module docstring).

    Raises:
        ConfigError: no ``until``, nothing recorded, and drip-loader has no email event
            yet; or ``until`` is before rows already copied.
    """
    if until is not None:
        copied = [
            (row.last_timestamp, row.table)
            for row in recorded.values()
            if row.last_timestamp is not None and row.last_timestamp >= until
        ]
        if copied:
            last, name = max(copied)
            raise ConfigError(
                f"{name} rows up to {last.isoformat()} are already copied, past --until "
                f"{until.isoformat()}: give a later --until, or leave it out to go on with "
                "the cutoffs of the first run"
            )
        return {name: Cutoff(until, REASON_UNTIL) for name in EMAIL_TABLES}
    first = _first_events(conn) if any(n not in recorded for n in EMAIL_TABLES) else {}
    cutoffs: dict[str, Cutoff] = {}
    for name in EMAIL_TABLES:
        row = recorded.get(name)
        if row is not None:
            cutoffs[name] = Cutoff(row.cutoff, row.cutoff_reason)
        elif name in first:
            cutoffs[name] = Cutoff(first[name], REASON_FIRST)
        elif first:
            cutoffs[name] = Cutoff(min(first.values()), REASON_SWITCH)
        else:
            raise ConfigError(
                "the warehouse has no email event drip-loader received yet, so there is no "
                "switch-over time to cut Segment's history at: start `drip-loader serve` in "
                "this schema first and let it receive events (see the guide, "
                "docs/switching-from-segment.md), or give --until"
            )
    return cutoffs


def _first_events(conn: Connection) -> dict[str, datetime]:
    """Per email collection, the earliest event time drip-loader itself has: in its rows
    (drip- ids) or in ``_raw_events``, whichever is earlier."""
    first: dict[str, datetime] = {}
    branch = Template(part("first_row.sql"))
    rows = text(
        Template(part("first_rows.sql")).substitute(
            branches="\nUNION ALL\n".join(
                branch.substitute(table=quote(n), name=literal(n)) for n in EMAIL_TABLES
            )
        )
    )
    for found in conn.execute(rows):
        if found.first_at is not None:
            first[str(found.name)] = found.first_at
    raw = conn.execute(
        text(read_sql("import_segment/first_events.sql")),
        {"drip_events": [e for n in EMAIL_TABLES for e in BY_NAME[n].drip_events]},
    )
    for found in raw:
        slug = BY_DRIP_EVENT[str(found.event)].name
        at: datetime = found.first_at
        first[slug] = min(at, first.get(slug, at))
    return first


def start_keys(
    recorded: dict[str, ledger.LedgerRow], cutoffs: dict[str, Cutoff]
) -> dict[str, tuple[datetime | None, str | None]]:
    """Per table, the key this run copies after: the ledger's, except for tracks when an
    event type's cutoff moved later than recorded: then from its old cutoff (tracks holds
    every type in one time order, so rows of that type before the last key are still to
    copy; rows copied again are skipped)."""
    keys: dict[str, tuple[datetime | None, str | None]] = {}
    for name in TABLES:
        row = recorded.get(name)
        keys[name] = (None, None) if row is None else (row.last_timestamp, row.last_id)
    raised = [
        recorded[n].cutoff
        for n in EMAIL_TABLES
        if n in recorded and cutoffs[n].at > recorded[n].cutoff
    ]
    last = keys["tracks"][0]
    if raised and last is not None and last >= min(raised):
        keys["tracks"] = (min(raised), "")  # before every row at that instant
    return keys
