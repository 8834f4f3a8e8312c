"""What ``import-segment`` copies from each table of a Segment-made schema, and how.

Segment's warehouse tables hold the common columns of spec §5 (``id``, ``anonymous_id``,
``user_id``, ``event``, ``event_text``, the five times), ``context_*`` columns and one
column per property it ever saw, typed by the values it saw (text, bigint, numeric,
boolean, timestamptz).  Ours are the same names with fixed types (:mod:`loader.tables`):
text, and timestamptz for the times.  A :class:`TablePlan` maps every column of ours to an
SQL expression over the Segment row ``s`` (by name; NULL where Segment has no such column),
says which source values could fail to land (:attr:`TablePlan.checks`) and which source
columns have no counterpart (:attr:`TablePlan.extra`).  The statements of
``sql/import_segment/`` are filled in from it.

Conversions, chosen so that nothing depends on the session's settings:

- to text: ``CAST(... AS text)`` (bigint 88888 is ``'88888'``, numeric keeps its digits,
  boolean is ``true``/``false``), except times, written as ISO 8601 in UTC;
- to timestamptz: a timestamptz as it is; a timestamp (no zone) or date as UTC; text through
  ``_to_timestamptz`` (ISO 8601 only; anything else cannot land and is reported); any
  other type cannot land.

Where Segment left a required time empty, the spec's own rules fill it: ``original_timestamp``
and ``received_at`` are ``timestamp``, ``sent_at`` is ``received_at`` (spec §5); ``event`` and
``event_text`` come from the registry.  A row without ``timestamp`` cannot be placed in time
and stops the import (:func:`loader.pipeline.import_segment.import_segment`).

Identifiers come from the catalog (the source's own names) and are always quoted; values
are literals rendered by the Postgres dialect.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from string import Template

from sqlalchemy import DateTime, String, Text, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import TextClause

from ..domain.registry import BY_NAME, DEFAULT_ON
from ..errors import ConfigError
from ..warehouse.sqlfiles import read_sql
from ..warehouse.tables import CONTEXT_COLUMNS, build_metadata

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
_QUOTE = _DIALECT.identifier_preparer.quote
_LITERAL = String().literal_processor(dialect=_DIALECT)  # type: ignore[no-untyped-call]

EMAIL_TABLES: tuple[str, ...] = DEFAULT_ON
"""The six email collections of Segment's Drip source (registry order)."""
TABLES: tuple[str, ...] = ("tracks", *EMAIL_TABLES)
"""Every table copied, in the order copied: tracks first, so that a collection row whose
event Segment's tracks lacks gets its tracks row made after every real one is in."""
COMMON = (
    "id",
    "anonymous_id",
    "user_id",
    "event",
    "event_text",
    "original_timestamp",
    "timestamp",
    "received_at",
    "sent_at",
    *CONTEXT_COLUMNS,
)
"""The columns of ours a Segment row fills, common to tracks and the collections (spec §5);
``uuid_ts`` is left to its default: when the import wrote the row."""
NOT_COPIED = frozenset({"uuid_ts"})
"""Segment columns with a counterpart that is not copied (``uuid_ts``: ours says when this
warehouse wrote the row, which is what incremental dbt models key on)."""

_ISO_UTC = '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\''
_ISO_LOCAL = "'YYYY-MM-DD\"T\"HH24:MI:SS.US'"


def literal(value: str) -> str:
    """``value`` as a quoted Postgres string literal."""
    assert _LITERAL is not None
    return str(_LITERAL(value))


def quote(name: str) -> str:
    """``name`` as a quoted Postgres identifier."""
    return str(_QUOTE(name))


@dataclass(frozen=True)
class SourceColumn:
    """A column of a Segment table, as the catalog describes it."""

    name: str
    type_name: str
    """``pg_type.typname`` of its (base) type, e.g. ``int8``, ``varchar``, ``timestamptz``."""
    category: str
    """``pg_type.typcategory``: ``S`` string, ``N`` numeric, ``B`` boolean, ``D`` date/time, ..."""
    type_text: str
    """The type as Postgres prints it, e.g. ``character varying(1024)``."""


@dataclass(frozen=True)
class SourceTable:
    """A table of the Segment-made schema."""

    schema: str
    name: str
    columns: dict[str, SourceColumn]

    @property
    def qualified(self) -> str:
        return f"{quote(self.schema)}.{quote(self.name)}"


def read_source(conn: Connection, *, schema: str) -> dict[str, SourceTable]:
    """The tables of :data:`TABLES` that ``schema`` has, with their columns.

    Raises:
        ConfigError: the schema does not exist, or has none of those tables.
    """
    exists = conn.execute(text(read_sql("import_segment/schema_exists.sql")), {"schema": schema})
    if not exists.scalar_one():
        raise ConfigError(
            f'schema "{schema}" does not exist in this database: give --from-schema the schema '
            "Segment's Drip source writes to (the source's schema name in Segment)"
        )
    found: dict[str, dict[str, SourceColumn]] = {}
    rows = conn.execute(
        text(read_sql("import_segment/source_columns.sql")),
        {"schema": schema, "tables": list(TABLES)},
    )
    for row in rows:
        column = SourceColumn(row.column_name, row.type_name, row.category, row.type_text)
        found.setdefault(row.table_name, {})[row.column_name] = column
    if not found:
        raise ConfigError(
            f'schema "{schema}" has none of the tables of Segment\'s Drip source '
            f"({', '.join(TABLES)}): check --from-schema"
        )
    return {name: SourceTable(schema, name, found[name]) for name in TABLES if name in found}


def _as_text(column: SourceColumn, ref: str) -> str:
    if column.type_name == "timestamptz":
        return f"to_char(timezone('UTC', {ref}), {_ISO_UTC})"
    if column.type_name == "timestamp":
        return f"to_char({ref}, {_ISO_LOCAL})"
    return f"CAST({ref} AS text)"


def _as_time(column: SourceColumn, ref: str) -> tuple[str, bool]:
    """The timestamptz of ``ref``, and whether that conversion can fail (NULL for a value)."""
    if column.type_name == "timestamptz":
        return ref, False
    if column.type_name == "timestamp":
        return f"timezone('UTC', {ref})", False
    if column.type_name == "date":
        return f"timezone('UTC', CAST({ref} AS timestamp))", False
    if column.category == "S":
        return f"_to_timestamptz(CAST({ref} AS text))", True
    return "CAST(NULL AS timestamptz)", True


@dataclass(frozen=True)
class TablePlan:
    """How one Segment table is copied into the table of ours with the same name."""

    source: SourceTable
    columns: tuple[str, ...]
    """Our columns written, in our table's order."""
    values: dict[str, str]
    """Our column -> its SQL value over the Segment row ``s``."""
    checks: dict[str, str]
    """Our column -> SQL that is true when the Segment value cannot land in it."""
    extra: tuple[str, ...]
    """Segment columns with no counterpart in ours (listed in the report, not copied)."""
    timestamp: str
    """The event time of the Segment row (cutoff and batch order)."""
    id: str
    """The Segment row's id, as text."""
    event_match: str
    """Joins the row to its event type's cutoff (``c.event``, ``c.cutoff``)."""
    lacks_tracks: str
    """True for a collection row whose id Segment's tracks lacks (its tracks row is made)."""
    tracks_join: str
    """The join to Segment's tracks that :attr:`lacks_tracks` reads (or nothing)."""

    @property
    def target(self) -> str:
        return self.source.name

    def type_of(self, column: str) -> str:
        """The Segment type of our ``column``'s source column (for messages)."""
        return self.source.columns[column].type_text


@cache
def _target_columns(name: str) -> dict[str, bool]:
    """Our columns of table ``name`` a Segment row fills -> whether each is a time."""
    table = build_metadata("drip").tables[f"drip.{name}"]
    return {
        c.name: isinstance(c.type, DateTime)
        for c in table.columns
        if c.name not in NOT_COPIED and isinstance(c.type, Text | DateTime)
    }


def plan_table(source: SourceTable, *, tracks: SourceTable | None = None) -> TablePlan:
    """The plan for ``source`` (one of :data:`TABLES`); ``tracks``: Segment's tracks table,
    if the schema has one (a collection row it lacks gets its tracks row made).

    Raises:
        ConfigError: the table lacks ``id`` or ``timestamp`` (tracks: ``event``), so it is
            not laid out as Segment's.
    """
    required = ("id", "timestamp", "event") if source.name == "tracks" else ("id", "timestamp")
    missing = [c for c in required if c not in source.columns]
    if missing:
        raise ConfigError(
            f"{source.schema}.{source.name} has no {' or '.join(missing)} column, so it is not "
            "a table of Segment's Drip source: check --from-schema"
        )
    ours = _target_columns(source.name)
    values: dict[str, str] = {}
    checks: dict[str, str] = {}
    for name, is_time in ours.items():
        column = source.columns.get(name)
        if column is None:
            values[name] = "CAST(NULL AS timestamptz)" if is_time else "CAST(NULL AS text)"
            continue
        ref = f"s.{quote(name)}"
        if not is_time:
            values[name] = _as_text(column, ref)
            continue
        value, fallible = _as_time(column, ref)
        values[name] = value
        if fallible:
            checks[name] = f"({ref} IS NOT NULL AND {value} IS NULL)"
    timestamp = values["timestamp"]
    id_ = values["id"]
    # spec §5's own rules where Segment left a required column empty
    values["original_timestamp"] = f"coalesce({values['original_timestamp']}, {timestamp})"
    values["received_at"] = f"coalesce({values['received_at']}, {timestamp})"
    values["sent_at"] = f"coalesce({values['sent_at']}, {values['received_at']})"
    if source.name == "tracks":
        event = values["event"]
        names = " ".join(
            f"WHEN {literal(n)} THEN {literal(BY_NAME[n].event_text)}" for n in EMAIL_TABLES
        )
        values["event_text"] = f"coalesce({values['event_text']}, CASE {event} {names} END)"
        event_match = f"c.event = {event}"
    else:
        values["event"] = f"coalesce({values['event']}, {literal(source.name)})"
        event_text = literal(BY_NAME[source.name].event_text)
        values["event_text"] = f"coalesce({values['event_text']}, {event_text})"
        event_match = "true"
    tracks_join = ""
    if source.name == "tracks":
        lacks_tracks = "false"
    elif tracks is None:
        lacks_tracks = "true"
    else:
        # Segment's tracks is keyed by id: at most one row joins
        tracks_join = f"\n    LEFT JOIN {tracks.qualified} t ON t.id = s.id"
        lacks_tracks = "t.id IS NULL"
    extra = tuple(c for c in source.columns if c not in ours and c not in NOT_COPIED)
    return TablePlan(
        source=source,
        columns=tuple(ours),
        values=values,
        checks=checks,
        extra=extra,
        timestamp=timestamp,
        id=id_,
        event_match=event_match,
        lacks_tracks=lacks_tracks,
        tracks_join=tracks_join,
    )


_AFTER_LAST = (
    "(CAST(:last_timestamp AS timestamptz) IS NULL OR {ts} > :last_timestamp "
    'OR ({ts} = :last_timestamp AND {id} COLLATE "C" > CAST(:last_id AS text)))'
)


def _filters(plan: TablePlan) -> dict[str, str]:
    before = f"{plan.timestamp} < c.cutoff"
    after = _AFTER_LAST.format(ts=plan.timestamp, id=plan.id)
    return {
        "source": plan.source.qualified,
        "timestamp": plan.timestamp,
        "id": plan.id,
        "event_match": plan.event_match,
        "lacks_tracks": plan.lacks_tracks,
        "tracks_join": plan.tracks_join,
        "before": before,
        "to_copy": f"{before} AND {after}",
    }


@cache
def _template(name: str) -> Template:
    return Template(part(name))


def survey_statement(plan: TablePlan) -> TextClause:
    """``survey.sql`` for ``plan``: columns ``check_<i>`` (first id whose value of
    ``plan.checks``' i-th column cannot land) and ``extra_<i>`` (non-null values of
    ``plan.extra``'s i-th column before the cutoff) follow the fixed ones."""
    filters = _filters(plan)
    checks = "".join(
        f',\n       min({plan.id} COLLATE "C") FILTER (WHERE {filters["to_copy"]} AND {check})'
        f" AS check_{i}"
        for i, check in enumerate(plan.checks.values())
    )
    extras = "".join(
        f",\n       count(s.{quote(column)}) FILTER (WHERE {filters['before']}) AS extra_{i}"
        for i, column in enumerate(plan.extra)
    )
    return text(_template("survey.sql").substitute(filters, checks=checks, extras=extras))


def _bad(plan: TablePlan) -> str:
    """SQL naming the first of our columns whose Segment value cannot land (else NULL)."""
    if not plan.checks:
        return "CAST(NULL AS text)"
    whens = " ".join(f"WHEN {check} THEN {literal(c)}" for c, check in plan.checks.items())
    return f"CASE {whens} END"


def stage_statement(plan: TablePlan) -> TextClause:
    """``stage.sql`` for ``plan``: the rows to copy, converted and numbered."""
    values = ",\n           ".join(f"{plan.values[c]} AS {quote(c)}" for c in plan.columns)
    return text(_template("stage.sql").substitute(_filters(plan), values=values, bad=_bad(plan)))


def copy_statement(plan: TablePlan) -> TextClause:
    """``copy_batch.sql`` for ``plan``."""
    if plan.target == "tracks":
        derive, derived = "", "0"
    else:
        common = ", ".join(quote(c) for c in COMMON)
        derive = Template(part("derive_tracks.sql")).substitute(common=common)
        derived = "(SELECT count(*) FROM derived)"
    return text(
        _template("copy_batch.sql").substitute(
            target=quote(plan.target),
            columns=", ".join(quote(c) for c in plan.columns),
            derive=derive,
            derived=derived,
        )
    )


def part(name: str) -> str:
    """A template under ``sql/import_segment/`` without its header comment."""
    lines = read_sql(f"import_segment/{name}").splitlines()
    while lines and lines[0].startswith("--"):
        lines.pop(0)
    return "\n".join(lines)
