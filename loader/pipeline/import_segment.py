"""``import-segment``: copy the history of a Segment-made schema into drip-loader's warehouse.

Someone switching from Segment's Drip source has years of ``email_opened``, ``tracks``, ...
in a schema Segment wrote.  :func:`import_segment` copies every row of the six email tables,
and their ``tracks`` rows, into the warehouse schema (same database), where they are rows
like any other: the reports, attribution, dbt sources and ``subscribers`` see them.

What is copied: per event type, every row before a cutoff (:mod:`loader.pipeline.import_cutoffs`):
by default the earliest event time drip-loader itself has for that type, so an event both
systems sent during the switch-over is counted once.

How: the source is read, never changed.  One survey per table first (counts, the cutoff,
and every reason the copy would stop: a row without time, an id in drip-loader's format, a
value that cannot land), so a bad row stops the run before anything is copied.  Then per
table the rows to copy are converted and numbered in ``(timestamp, id)`` order in a
temporary table, in one sequential read of the source (:mod:`loader.pipeline.import_plan`),
and copied in batches of ``batch_size``, each in its own short transaction with its ledger
row: a killed run resumes after the last batch it committed, and every insert is ``ON
CONFLICT DO NOTHING``, so a second run adds nothing.  Each batch first makes the monthly
partitions of its rows (:func:`loader.warehouse.partitions.ensure_partitions`).

Beside ``serve`` and ``load``: a batch takes only the row locks of the rows it inserts (ids
never collide: Segment's are not ``drip-``), so they never wait for it, and a command that
locks a whole table or partition (``rebuild``'s TRUNCATE of a month) waits one batch at most.
One import per warehouse schema at a time (an advisory lock, released with its session).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import datetime
from string import Template
from typing import Any

from sqlalchemy import Text, cast, column, select, table, text
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import TextClause

from ..config import DEFAULT_IMPORT_BATCH_SIZE, validate_schema
from ..counts import Counts
from ..errors import ConfigError, SegmentRowError
from ..progress import QUIET, Progress
from ..warehouse import imports as ledger
from ..warehouse import migrate
from ..warehouse.db import batch_session, translating
from ..warehouse.partitions import ensure_partitions, forget_partitions, missing_partition
from ..warehouse.runs import recorded_run
from ..warehouse.sqlfiles import read_sql
from .import_cutoffs import REASON_TRACKS, resolve_cutoffs, start_keys
from .import_plan import (
    EMAIL_TABLES,
    TABLES,
    TablePlan,
    copy_statement,
    part,
    plan_table,
    quote,
    read_source,
    stage_statement,
    survey_statement,
)
from .import_report import Cutoff, ImportReport, TableReport

_ATTEMPTS = 3
DEFAULT_BATCH_SIZE = DEFAULT_IMPORT_BATCH_SIZE
COMMAND = "import-segment"
"""The command's name in ``_runs``."""


def check_options(
    *, schema: str, source_schema: str, until: datetime | None, batch_size: int
) -> None:
    """Check the options of :func:`import_segment` (no I/O: before any database is opened).

    Raises:
        ConfigError: a source schema that is no plain name or is the warehouse schema, a
            batch size below 1, an ``until`` without a time zone.
    """
    validate_schema(source_schema)
    if source_schema == schema:
        raise ConfigError(
            f'--from-schema is the warehouse schema "{schema}" itself: import from the schema '
            "Segment's Drip source writes to, into a schema of drip-loader's"
        )
    if batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    if until is not None and until.tzinfo is None:
        raise ConfigError("--until needs a time zone (e.g. 2026-10-01T00:00:00Z)")


def import_segment(
    engine: Engine,
    *,
    schema: str,
    source_schema: str,
    until: datetime | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> ImportReport:
    """Copy the history of ``source_schema`` (Segment-made) into ``schema`` (see the module).

    Args:
        until: the cutoff of every event type (aware); None: as recorded by the first run,
            else the defaults of the module docstring.
        dry_run: survey and report only; nothing is written (the schema must be at head).
        batch_size: rows per transaction.
        progress: told a phase per table, advanced by rows read.

    Raises:
        ConfigError: a bad option, a source that is not Segment-made, no cutoff to be had,
            ``--until`` before rows already copied, another import running.
        SegmentRowError: a source row that cannot be copied (nothing of this run is copied
            when the survey finds it; batches committed before stay when a batch does).
        DatabaseError: the database failed; committed batches stay, a rerun resumes.
    """
    started = time.perf_counter()
    progress = progress or QUIET
    check_options(schema=schema, source_schema=source_schema, until=until, batch_size=batch_size)
    if dry_run:
        migrate.require_head(engine, schema=schema, then="run `drip-loader migrate` first")
    else:
        migrate.ensure_schema(engine, schema=schema, migrate_first=True)

    with translating(), engine.connect() as conn:
        batch_session(conn, schema)
        conn.commit()
        if (
            not dry_run
            and not conn.execute(
                text(read_sql("import_segment/lock.sql")), {"schema": schema}
            ).scalar_one()
        ):
            raise ConfigError(
                f'another import-segment is running on schema "{schema}": wait for it to end '
                "(or stop it; a rerun resumes where it stopped)"
            )
        try:
            report = _run(
                engine,
                conn,
                schema=schema,
                source=source_schema,
                until=until,
                dry_run=dry_run,
                batch_size=batch_size,
                progress=progress,
            )
        finally:
            conn.rollback()
            if not dry_run:
                conn.execute(text(read_sql("import_segment/stage_drop.sql")))
                conn.execute(text(read_sql("import_segment/unlock.sql")), {"schema": schema})
                conn.commit()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _run(
    engine: Engine,
    conn: Connection,
    *,
    schema: str,
    source: str,
    until: datetime | None,
    dry_run: bool,
    batch_size: int,
    progress: Progress,
) -> ImportReport:
    found = read_source(conn, schema=source)
    tracks = found.get("tracks")
    plans = {name: plan_table(found[name], tracks=tracks) for name in TABLES if name in found}
    recorded = ledger.read_ledger(conn, schema=schema, source=source)
    cutoffs = resolve_cutoffs(conn, recorded=recorded, until=until)
    keys = start_keys(recorded, cutoffs)
    report = ImportReport(source, schema, dry_run, cutoffs, [])
    for name in TABLES:
        report.tables.append(TableReport(name, name in plans))
    surveys = {t.table: t for t in report.tables}
    for name, plan in plans.items():
        _survey(conn, plan, surveys[name], cutoffs=cutoffs, after=keys[name])
    conn.rollback()
    if dry_run:
        return report

    with conn.begin():
        for name in TABLES:
            if name == "tracks":  # each row is cut at its event type's cutoff
                at, reason = max(c.at for c in cutoffs.values()), REASON_TRACKS
            else:
                at, reason = cutoffs[name].at, cutoffs[name].reason
            ledger.start_table(
                conn,
                schema=schema,
                source=source,
                table=name,
                cutoff=at,
                reason=reason,
                last_timestamp=keys[name][0],
                last_id=keys[name][1],
            )
            if name not in plans:  # Segment never wrote that table: nothing to copy
                ledger.finish(conn, schema=schema, source=source, table=name)
    report.load_id = uuid.uuid4().hex
    counts = Counts(rows_added=Counter())

    def run_counts() -> dict[str, Any]:
        counts.read = sum(t.read for t in report.tables)
        counts.rows_added = Counter({t.table: t.added for t in report.tables if t.added}) + Counter(
            {"tracks": sum(t.tracks_made for t in report.tables)}
        )
        return counts.as_dict()

    with recorded_run(
        engine,
        schema=schema,
        load_id=report.load_id,
        command=COMMAND,
        sources=source,
        counts=run_counts,
    ):
        for name, plan in plans.items():
            _copy(
                conn,
                plan,
                surveys[name],
                schema=schema,
                cutoffs=cutoffs,
                after=keys[name],
                batch_size=batch_size,
                progress=progress,
            )
        progress.start("Subscribers from Segment's history", None)
        with conn.begin():
            row = conn.execute(_subscribers_statement()).one()
        report.subscribers_added = int(row.added)
        report.subscribers_updated = int(row.updated)
        report.subscribers_replaced = int(row.replaced)
    return report


def _binds(
    plan: TablePlan, cutoffs: dict[str, Cutoff], after: tuple[datetime | None, str | None]
) -> dict[str, Any]:
    names = list(EMAIL_TABLES) if plan.target == "tracks" else [plan.target]
    return {
        "events": names,
        "cutoffs": [cutoffs[n].at for n in names],
        "last_timestamp": after[0],
        "last_id": after[1] or "",
    }


def _survey(
    conn: Connection,
    plan: TablePlan,
    report: TableReport,
    *,
    cutoffs: dict[str, Cutoff],
    after: tuple[datetime | None, str | None],
) -> None:
    """Fill ``report``'s counts from one read of the source table.

    Raises:
        SegmentRowError: a row to copy that would stop the copy (the first one found).
    """
    row = conn.execute(survey_statement(plan), _binds(plan, cutoffs, after)).mappings().one()
    report.source_rows = int(row["source_rows"])
    report.before_cutoff = int(row["before_cutoff"])
    report.to_copy = int(row["to_copy"])
    report.extra = [(c, int(row[f"extra_{i}"])) for i, c in enumerate(plan.extra)]
    where = f"{plan.source.schema}.{plan.target}"
    if row["no_timestamp"] is not None:
        raise SegmentRowError(
            f'{plan.target} row "{row["no_timestamp"]}" has no timestamp that drip-loader can '
            f"read ({plan.type_of('timestamp')}), so it cannot be placed in time: set it "
            f"(for instance to received_at) or delete the row in {where}, then run "
            "import-segment again; nothing was copied by this run",
            table=plan.target,
            row_id=str(row["no_timestamp"]),
            column="timestamp",
        )
    if row["drip_id"] is not None:
        raise SegmentRowError(
            f'{plan.target} row "{row["drip_id"]}" has an id in drip-loader\'s own format '
            "(drip-...), which Segment never makes: this schema holds rows drip-loader wrote, "
            f"not Segment's history; check --from-schema (nothing was copied by this run)",
            table=plan.target,
            row_id=str(row["drip_id"]),
            column=None,
        )
    for i, name in enumerate(plan.checks):
        bad = row[f"check_{i}"]
        if bad is not None:
            raise _bad_value(conn, plan, str(bad), name, copied="nothing was copied by this run")


def _bad_value(
    conn: Connection, plan: TablePlan, row_id: str, name: str, *, copied: str
) -> SegmentRowError:
    source = table(plan.target, column(name), column("id"), schema=plan.source.schema)
    value = conn.execute(
        select(cast(source.c[name], Text)).where(cast(source.c.id, Text) == row_id)
    ).scalar()
    shown = repr(value if value is None or len(value) <= 60 else value[:57] + "...")
    return SegmentRowError(
        f'{plan.target} row "{row_id}": column {name} holds {shown} '
        f"({plan.type_of(name)}), which is no time drip-loader can store (timestamptz; "
        f"text must be ISO 8601): fix or delete that row in {plan.source.schema}."
        f"{plan.target} (import-segment never changes it), then run import-segment again; "
        f"{copied}",
        table=plan.target,
        row_id=row_id,
        column=name,
    )


def _copy(
    conn: Connection,
    plan: TablePlan,
    report: TableReport,
    *,
    schema: str,
    cutoffs: dict[str, Cutoff],
    after: tuple[datetime | None, str | None],
    batch_size: int,
    progress: Progress,
) -> None:
    """Copy the rows of ``plan``'s table after ``after`` and before the cutoffs, a
    transaction per batch, each moving the table's ledger row with it."""
    progress.start(f"Copying {plan.target}", report.to_copy)
    with conn.begin():
        conn.execute(text(read_sql("import_segment/stage_drop.sql")))
        total = conn.execute(stage_statement(plan), _binds(plan, cutoffs, after)).rowcount
        conn.execute(text(read_sql("import_segment/stage_index.sql")))
    statement = copy_statement(plan)
    done = 0
    while done < total:
        high = min(done + batch_size, total)
        row = _copy_batch(
            conn, plan, statement, schema=schema, done=done, high=high, batch_size=batch_size
        )
        done = high
        report.read += int(row.read)
        report.added += int(row.added)
        report.tracks_made += int(row.derived)
        progress.advance(int(row.read))
    with conn.begin():
        ledger.finish(conn, schema=schema, source=plan.source.schema, table=plan.target)


def _copy_batch(
    conn: Connection,
    plan: TablePlan,
    statement: TextClause,
    *,
    schema: str,
    done: int,
    high: int,
    batch_size: int,
) -> Row[Any]:
    """Copy the staged rows numbered (``done``, ``high``] and move the ledger, in one transaction,
    after making sure the months they fall in have their partitions (Segment's history spans
    months and years drip-loader never received an event of)."""
    source = plan.source.schema
    for attempt in range(_ATTEMPTS):
        with conn.begin():
            # aware datetimes: ensure_partitions takes each one's month in UTC
            wanted: list[datetime] = list(
                conn.execute(
                    text(read_sql("import_segment/key_months.sql")), {"done": done, "high": high}
                ).scalars()
            )
        ensure_partitions(conn, schema=schema, months=wanted)
        try:
            with conn.begin():
                row = conn.execute(statement, {"done": done, "batch_size": batch_size}).one()
                if row.bad is not None:
                    raise _bad_value(
                        conn,
                        plan,
                        row.bad[0],
                        row.bad[1],
                        copied="the batches committed before are kept",
                    )
                last = conn.execute(text(read_sql("import_segment/key_at.sql")), {"n": high}).one()
                ledger.advance(
                    conn,
                    schema=schema,
                    source=source,
                    table=plan.target,
                    last_timestamp=last.ts,
                    last_id=last.id,
                    read=int(row.read),
                    added=int(row.added),
                )
                ledger.count_added(
                    conn, schema=schema, source=source, table="tracks", added=int(row.derived)
                )
            return row
        except DBAPIError as exc:
            # a partition dropped since this process saw it: make it again
            if not missing_partition(exc) or attempt == _ATTEMPTS - 1:
                raise
            forget_partitions(conn, schema=schema)
    raise AssertionError("unreachable")


def _subscribers_statement() -> TextClause:
    branch = Template(part("subscribers_seen.sql"))
    seen = "\nUNION ALL\n".join(branch.substitute(table=quote(n)) for n in EMAIL_TABLES)
    return text(Template(part("subscribers.sql")).substitute(seen=seen))
