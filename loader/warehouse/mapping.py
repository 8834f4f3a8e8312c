"""The per-collection SQL, generated from :mod:`loader.registry`.

Every statement that names the collection tables is a template under ``sql/`` filled in
here, per set of collections: the mapping tail (``transform/map_and_insert.sql``, one
``transform/insert_collection.sql`` per collection that is on), the outbox claim
(``emit/claim.sql``, one ``emit/claim_collection.sql`` per collection) and the backfill
of a collection just turned on.  Identifiers are quoted and
values rendered as literals by the Postgres dialect (registry names are validated
constants, never input).  Statements are cached per set of collections: a load builds its
statement once.

Which collections are on is a setting in the warehouse (``_collections``), read by
:func:`enabled_collections` under a lock that turning one on waits for
(``sql/collections/lock_shared.sql``).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from string import Template
from typing import Any

from sqlalchemy import String, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import TextClause

from .._version import __version__
from ..domain.registry import BY_NAME, COLLECTIONS, Collection, Property
from .sqlfiles import read_sql

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
_QUOTE = _DIALECT.identifier_preparer.quote
_LITERAL = String().literal_processor(dialect=_DIALECT)  # type: ignore[no-untyped-call]

Names = tuple[str, ...]
"""Collection names, in registry order (what the caches are keyed by)."""

ALL: Names = tuple(c.name for c in COLLECTIONS)

CLAIM_PROPERTIES: tuple[Property, ...] = tuple(
    {p.column: p for c in COLLECTIONS for p in c.properties}.values()
)
"""Every property column of every collection, once, in registry order: the tail of
:data:`loader.emit.CLAIM_COLUMNS`."""


def _literal(value: str) -> str:
    assert _LITERAL is not None
    return str(_LITERAL(value))


def _part(name: str) -> Template:
    """A template under ``sql/`` that is a piece of a statement, without its header comment."""
    lines = read_sql(name).splitlines()
    while lines and lines[0].startswith("--"):
        lines.pop(0)
    return Template("\n".join(lines))


def in_order(names: Iterable[str]) -> Names:
    """``names`` that are collections, in registry order (unknown names are dropped)."""
    wanted = set(names)
    return tuple(name for name in ALL if name in wanted)


def _extract(collection: Collection, key: str) -> str:
    """A text property read from ``p`` (``data.properties``).

    Email events were validated at landing (strings or integers).  Other events are never
    rejected: an object or array where text is expected is NULL (the raw JSON is kept).
    """
    k = _literal(key)
    if collection.email:
        return f"p ->> {k}"
    return f"CASE WHEN jsonb_typeof(p -> {k}) NOT IN ('object', 'array') THEN p ->> {k} END"


def _value(collection: Collection, prop: Property) -> str:
    """The SQL value of one property column, over the columns of the ``fields`` CTE."""
    if prop.type == "jsonb":
        return "CASE WHEN jsonb_typeof(p) = 'object' THEN p END"
    reading = [s for s in collection.sources if s.reads is None or prop.column in s.reads]
    extract = _extract(collection, prop.path)
    if any(prop.column in dict(s.fixed) for s in collection.sources):
        whens = []
        for source in collection.sources:
            fixed = dict(source.fixed)
            if prop.column in fixed:
                whens.append(
                    f"WHEN {_literal(source.drip_event)} THEN {_literal(fixed[prop.column])}"
                )
            elif source in reading:
                whens.append(f"WHEN {_literal(source.drip_event)} THEN {extract}")
        return f"CASE drip_event {' '.join(whens)} END"
    if len(reading) == len(collection.sources):
        return extract
    if not reading:
        return "CAST(NULL AS text)"
    events = ", ".join(_literal(s.drip_event) for s in reading)
    return f"CASE WHEN drip_event IN ({events}) THEN {extract} END"


def _context(collections: tuple[Collection, ...], column: str) -> str:
    whens = [
        f"WHEN slug = {_literal(c.name)} THEN {_extract(c, extra.key)}"
        for c in collections
        for extra in c.context
        if extra.column == column
    ]
    return f"CASE {' '.join(whens)} END" if whens else "CAST(NULL AS text)"


@cache
def map_tail(names: Names, *, subscribers: bool = True) -> str:
    """``transform/map_and_insert.sql`` for the collections ``names``.

    ``subscribers``: also queue each event's subscriber snapshot (not for a backfill).
    """
    collections = tuple(BY_NAME[n] for n in names)
    # One `mapped` column per distinct (property, expression): collections that read a
    # property the same way share it (the default six compute seven, as before the registry).
    aliases: dict[tuple[str, str], str] = {}
    properties: list[str] = []
    inserts: list[str] = []
    counts: list[str] = []
    insert = _part("transform/insert_collection.sql")
    for c in collections:
        values = []
        for prop in c.properties:
            value = _value(c, prop)
            alias = aliases.get((prop.column, value))
            if alias is None:
                taken = any(column == prop.column for column, _ in aliases)
                alias = f"{prop.column}__{c.name}" if taken else prop.column
                aliases[(prop.column, value)] = alias
                properties.append(f",\n           {value} AS {_QUOTE(alias)}")
            values.append(_QUOTE(alias))
        cte = _QUOTE(f"add_{c.name}")
        columns = "".join(f", {_QUOTE(p.column)}" for p in c.properties)
        inserts.append(
            insert.substitute(
                cte=cte,
                table=_QUOTE(c.name),
                properties=columns,
                values="".join(f", {v}" for v in values),
                slug=_literal(c.name),
            )
        )
        counts.append(f"\n       (SELECT count(*) FROM {cte}) AS {_QUOTE(c.name)},")
    return Template(read_sql("transform/map_and_insert.sql")).substitute(
        context_ip=_context(collections, "context_ip"),
        context_user_agent=_context(collections, "context_user_agent"),
        properties="".join(properties),
        inserts="".join(f", {i}" for i in inserts),
        queue_subscribers=_part("transform/queue_subscribers.sql").template if subscribers else "",
        counts="".join(counts),
    )


def map_params(names: Names) -> dict[str, Any]:
    """Bind values of :func:`map_tail`: the event map of the collections ``names``."""
    pairs = [(s.drip_event, BY_NAME[n]) for n in names for s in BY_NAME[n].sources]
    return {
        "drip_events": [event for event, _ in pairs],
        "slugs": [c.name for _, c in pairs],
        "names": [c.event_text for _, c in pairs],
        "library_version": __version__,
        "queue_outbox": True,  # a rebuild says False (transform/map_and_insert.sql)
    }


@cache
def mapping_statement(head: str, names: Names) -> TextClause:
    """``sql/<head>`` (which defines ``src``) followed by the mapping tail for ``names``."""
    return text(read_sql(head) + map_tail(names))


@cache
def backfill_statement(names: Names) -> TextClause:
    """Map the landed events of the collections ``names`` the transform passed over."""
    return text(read_sql("collections/backfill.sql") + map_tail(names, subscribers=False))


def enabled_collections(conn: Connection) -> Names:
    """Lock the setting for this transaction (see ``sql/collections/lock_shared.sql``) and
    return the collections that are on.  ``conn`` is in the transaction that maps."""
    conn.execute(text(read_sql("collections/lock_shared.sql")))
    return in_order(conn.execute(text(read_sql("collections/enabled.sql"))).scalars())


def claimable_collections(conn: Connection) -> Names:
    """The collections whose tables may hold events queued for Segment."""
    return in_order(conn.execute(text(read_sql("collections/claimable.sql"))).scalars())


def _claim_value(collection: Collection, prop: Property) -> str:
    if prop.column in collection.columns:
        return f"x.{_QUOTE(prop.column)}"
    return f"CAST(NULL AS {'jsonb' if prop.type == 'jsonb' else 'text'})"


@cache
def claim_statement(names: Names) -> TextClause:
    """``emit/claim.sql`` over the collections ``names`` (never empty: the email ones start
    on, and one turned off stays claimable)."""
    branch = _part("emit/claim_collection.sql")
    branches = [
        branch.substitute(
            table=_QUOTE(c.name),
            properties="".join(f", {_claim_value(c, p)}" for p in CLAIM_PROPERTIES),
        )
        for c in (BY_NAME[n] for n in names)
    ]
    return text(
        Template(read_sql("emit/claim.sql")).substitute(branches="\nUNION ALL\n".join(branches))
    )
