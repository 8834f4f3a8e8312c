"""Retry: re-validate stored rejects with the current code, and land those that now pass.

``drip-loader rejects retry`` walks the chosen rejects in batches, in id order.  Each batch
is one transaction that:

1. claims the batch's rows ``FOR UPDATE SKIP LOCKED`` (a concurrent retry takes other rows,
   and none that a retry has tried since this one started);
2. lands their bodies exactly as ``load`` lands a chunk (:func:`loader.pipeline.land.land_batch`:
   the same validation as ``load`` and ``serve``, the same dedupe by event key, the same
   mapping), with their own origin and this run's load id;
3. marks the rows that passed ``landed`` (with this run) and gives those that still fail
   their current reason, and logs every attempt in ``_reject_retries``.

So a reject lands once however often it is retried, and a crash rolls its batch back
whole.  **(decision)** A landed reject is marked, not deleted: its reason, body and history
stay readable (``rejects show``), ``list`` and ``status`` leave it out by default, and the
next retry skips it.  A reject cut at the size limit holds only its head: it is never
landed, and is reported as such.  After the batches, everything pending is transformed and
the subscriber snapshots merged, as at the end of a ``load``.

``dry_run`` runs each batch the same way and rolls it back: what would land, what still
fails, and nothing changes.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg2
from sqlalchemy import ColumnElement, Table, and_, exists, func, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from ..counts import Counts
from ..errors import RejectNotFound
from ..progress import QUIET, Progress
from ..results import Rows
from ..warehouse import migrate
from ..warehouse.db import batch_session, retryable, translating
from ..warehouse.rejects import stored_bytes, truncated
from ..warehouse.runs import recorded_run
from ..warehouse.sqlfiles import read_sql
from ..warehouse.tables import build_metadata
from ..warehouse.text import printable, utc_text
from .land import land_batch
from .transform import run_transforms

COMMAND = "rejects retry"
"""The ``_runs.command`` of a retry run."""
DEFAULT_BATCH_SIZE = 1_000
"""Rejects per transaction at most."""
BATCH_BYTES = 32 << 20
"""Bytes of bodies per transaction at most (but one reject): a batch is held in memory,
and a reject can be a megabyte or more."""
_ATTEMPTS = 5


@dataclass(frozen=True)
class RetriedReject:
    """What a retry did with one reject."""

    id: int
    origin: str
    outcome: str
    """``landed`` (it passes now and its event is in the warehouse: new, or already there),
    ``rejected`` (it still fails: ``reason``), ``cut`` (only its head is stored: not
    retried) or ``already landed`` (by an earlier retry: ``reason`` says when)."""
    reason: str | None = None


@dataclass(kw_only=True)
class RetryReport(Counts):
    """What ``rejects retry`` did.  ``read`` counts the rejects re-validated; ``landed``,
    ``duplicates`` and ``rejected`` split them as for a load."""

    load_id: str
    dry_run: bool = False
    cut: int = 0
    """Rejects not retried: cut at the size limit, only their head is stored."""
    already_landed: int = 0
    """Rejects asked for by id that an earlier retry had landed."""
    selection: str = ""
    """Which rejects were asked for, in words."""
    outcomes: list[RetriedReject] = field(default_factory=list)
    """The outcome of each reject that did not land, and of every reject asked for by id
    (a retry of all rejects counts those that landed: ``rejects list --landed`` lists them)."""

    def as_dict(self) -> dict[str, Any]:
        values = super().as_dict()
        values["outcomes"] = [
            {"id": r.id, "origin": r.origin, "outcome": r.outcome, "reason": r.reason}
            for r in self.outcomes
        ]
        return values

    def rows(self) -> Rows:
        """One row per outcome (CSV)."""
        return Rows(
            ("id", "origin", "outcome", "reason"),
            [(r.id, r.origin, r.outcome, r.reason) for r in self.outcomes],
        )

    def lines(self) -> list[str]:
        if self.dry_run:
            head = f"Dry run over {self.selection}: nothing was changed; a retry now would give:"
        else:
            head = f"Retried {self.selection} (run {self.load_id}):"
        lines = [head]
        width = max((len(str(r.id)) for r in self.outcomes), default=0)
        for r in self.outcomes:
            said = _OUTCOME_WORDS[r.outcome]
            reason = f": {printable(r.reason)}" if r.reason else ""
            lines.append(f"  {r.id:>{width}}  {said}{reason}")
        for label, value, always in (
            ("retried", self.read, True),
            ("landed", self.landed, True),
            ("already in the warehouse", self.duplicates, True),
            ("still rejected", self.rejected, True),
            ("not retried (cut)", self.cut, False),
            ("landed by an earlier retry", self.already_landed, False),
        ):
            if always or value:
                lines.append(f"  {label:<26}{value:>12,}")
        return lines


_OUTCOME_WORDS = {
    "landed": "landed",
    "rejected": "still rejected",
    "cut": "not retried",
    "already landed": "landed by an earlier retry",
}


def retry_rejects(
    engine: Engine,
    *,
    schema: str,
    ids: Sequence[int] = (),
    since: datetime | None = None,
    max_record_bytes: int,
    transform_batch_size: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    keep_outcomes: bool = True,
    on_row: Callable[[RetriedReject], None] | None = None,
    progress: Progress | None = None,
) -> RetryReport:
    """Re-validate the rejects ``ids`` (none: every reject still rejected, or those
    rejected at or after ``since``) and land those that pass now.

    Args:
        max_record_bytes: the size limit to validate with (as ``load --max-record-bytes``).
        transform_batch_size: events per transaction of the transform that follows.
        batch_size: rejects per transaction.
        dry_run: do everything, then roll it back.
        keep_outcomes: keep outcomes in the report (see :attr:`RetryReport.outcomes`; memory
            grows with the rejects that still fail; ``on_row`` streams every one instead).
        on_row: called with each reject's outcome once its batch is committed.
        progress: told the rejects to retry, then each batch.

    Raises:
        RejectNotFound: an id names no reject (nothing is retried then).
        ConfigError: the schema is not at the newest revision.
        DatabaseError: the database failed; batches committed before stay done.
    """
    migrate.require_head(engine, schema=schema, then="run `drip-loader migrate` first")
    progress = progress or QUIET
    report = RetryReport(load_id=uuid.uuid4().hex, dry_run=dry_run, selection=_words(ids, since))

    def tell(row: RetriedReject) -> None:
        if keep_outcomes and (ids or row.outcome != "landed"):
            report.outcomes.append(row)
        if on_row is not None:
            on_row(row)

    table = build_metadata(schema).tables[f"{schema}._rejects"]
    with translating(), engine.connect() as conn:
        chosen = _chosen(table, ids, since)
        if ids:
            found: set[int] = set(
                conn.execute(select(table.c.id).where(table.c.id.in_(ids))).scalars()
            )
            missing = sorted(set(ids) - found)
            if missing:
                raise RejectNotFound(missing, schema=schema)
            for row in conn.execute(
                select(table.c.id, table.c.origin, table.c.landed_at, table.c.landed_load_id)
                .where(chosen, table.c.landed_at.is_not(None))
                .order_by(table.c.id)
            ):
                report.already_landed += 1
                when = utc_text(row.landed_at)
                tell(
                    RetriedReject(
                        row.id, row.origin, "already landed", f"{when}, run {row.landed_load_id}"
                    )
                )
        for row in conn.execute(
            select(
                table.c.id, table.c.origin, table.c.raw_size, func.octet_length(stored_bytes(table))
            )
            .where(chosen, table.c.landed_at.is_(None), truncated(table))
            .order_by(table.c.id)
        ):
            report.cut += 1
            tell(RetriedReject(row[0], row[1], "cut", _cut_reason(row[2], row[3])))
        total = conn.execute(
            select(func.count())
            .select_from(table)
            .where(chosen, table.c.landed_at.is_(None), ~truncated(table))
        ).scalar_one()
        started = conn.execute(select(func.now())).scalar_one()
        conn.rollback()

    progress.start("Retrying rejects", int(total))
    retry = _Batches(
        engine,
        schema=schema,
        table=table,
        chosen=chosen,
        started=started,
        report=report,
        max_record_bytes=max_record_bytes,
        batch_size=batch_size,
    )
    if dry_run:
        retry.run(tell, progress, commit=False)
        report.outcomes.sort(key=lambda r: r.id)
        return report

    def counts() -> dict[str, Any]:
        return {k: v for k, v in report.as_dict().items() if k not in ("load_id", "outcomes")}

    with recorded_run(
        engine,
        schema=schema,
        load_id=report.load_id,
        command=COMMAND,
        sources=report.selection,
        counts=counts,
    ):
        retry.run(tell, progress, commit=True)
        if report.read:
            progress.start("Transforming", None)
            result = run_transforms(
                engine, schema=schema, batch_size=transform_batch_size, on_batch=progress.advance
            )
            report.transformed += result.events
            report.rows_added.update(result.rows_added)
    report.outcomes.sort(key=lambda r: r.id)
    return report


def _words(ids: Sequence[int], since: datetime | None) -> str:
    if ids:
        return "rejects " + ", ".join(str(i) for i in sorted(set(ids)))
    if since is not None:
        return f"rejects since {since.isoformat()}"
    return "all rejects"


def _chosen(table: Table, ids: Sequence[int], since: datetime | None) -> ColumnElement[bool]:
    where: list[ColumnElement[bool]] = []
    if ids:
        where.append(table.c.id.in_(sorted(set(ids))))
    if since is not None:
        where.append(table.c.rejected_at >= since)
    return and_(True, *where)


def _cut_reason(size: int, stored: int) -> str:
    return (
        f"it was over the size limit when it arrived and only its first {stored:,} of "
        f"{size:,} bytes are kept; load or send the original again (with a larger limit)"
    )


class _Batches:
    """The batch loop of :func:`retry_rejects`."""

    def __init__(
        self,
        engine: Engine,
        *,
        schema: str,
        table: Table,
        chosen: Any,
        started: datetime,
        report: RetryReport,
        max_record_bytes: int,
        batch_size: int,
    ) -> None:
        self._engine = engine
        self._schema = schema
        self._report = report
        self._max_record_bytes = max_record_bytes
        retries = build_metadata(schema).tables[f"{schema}._reject_retries"]
        tried_since_start = exists().where(
            retries.c.reject_id == table.c.id, retries.c.retried_at >= started
        )
        self._claim = (
            select(table.c.id, table.c.origin, table.c.raw_size)
            .where(chosen, table.c.landed_at.is_(None), ~truncated(table), ~tried_since_start)
            .order_by(table.c.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        self._table = table
        self._bodies = select(table.c.id, stored_bytes(table))
        self._mark = text(read_sql("rejects/mark.sql"))

    def run(
        self, tell: Callable[[RetriedReject], None], progress: Progress, *, commit: bool
    ) -> None:
        with translating(), self._engine.connect() as conn:
            batch_session(conn, self._schema)
            conn.commit()
            after = 0
            while True:
                done = self._batch(conn, after, commit=commit)
                if done is None:
                    return
                after, outcomes, counts = done
                self._report.add(counts)
                self._report.transformed += counts.landed  # mapped as they land, as in load
                for outcome in outcomes:
                    tell(outcome)
                progress.advance(len(outcomes))

    def _batch(
        self, conn: Connection, after: int, *, commit: bool
    ) -> tuple[int, list[RetriedReject], Counts] | None:
        """One batch after id ``after``, retried whole on a deadlock; None when none is left."""
        for attempt in range(_ATTEMPTS):
            try:
                with conn.begin() as transaction:
                    done = self._land(conn, after)
                    if not commit:
                        transaction.rollback()
                return done
            except (sa_exc.DBAPIError, psycopg2.Error) as exc:
                if not retryable(exc) or attempt == _ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
        raise AssertionError("unreachable")

    def _land(self, conn: Connection, after: int) -> tuple[int, list[RetriedReject], Counts] | None:
        locked: list[tuple[int, str, int]] = [
            (row[0], row[1], row[2])
            for row in conn.execute(self._claim.where(self._table.c.id > after))
        ]
        if not locked:
            return None
        # Bodies are read up to BATCH_BYTES a batch (at least one): the rows locked beyond
        # stay locked until the commit, and this run's next batch starts with them.
        taken, size = 0, 0
        for _, _, raw_size in locked:
            if taken and size + raw_size > BATCH_BYTES:
                break
            taken, size = taken + 1, size + raw_size
        ids = [row[0] for row in locked[:taken]]
        table = self._table
        bodies: dict[int, Any] = {
            row[0]: row[1] for row in conn.execute(self._bodies.where(table.c.id.in_(ids)))
        }
        claimed = [(id, origin, bytes(bodies[id])) for id, origin, _ in locked[:taken]]
        records = [(origin, body, len(body)) for _, origin, body in claimed]
        counts, rejects = land_batch(
            conn,
            records,
            schema=self._schema,
            load_id=self._report.load_id,
            max_record_bytes=self._max_record_bytes,
        )
        reasons = _match(claimed, rejects)
        conn.execute(
            self._mark,
            {
                "ids": [row[0] for row in claimed],
                "reasons": [reasons.get(row[0]) for row in claimed],
                "load_id": self._report.load_id,
            },
        )
        outcomes = [
            RetriedReject(
                id, origin, "landed" if reasons.get(id) is None else "rejected", reasons.get(id)
            )
            for id, origin, _ in claimed
        ]
        return claimed[-1][0], outcomes, counts


def _match(
    claimed: Sequence[tuple[int, str, bytes]], rejects: list[dict[str, Any]]
) -> dict[int, str]:
    """Which claimed reject each reject row of the landing is (its id → the reason).

    A reject row carries the origin and the sha256 of its bytes, the key of ``_rejects``.
    Postgres refusing a record whose NUL characters were replaced gives a row with other
    bytes: that one is matched by its origin alone.
    """
    by_key: dict[tuple[str, str], int] = {}
    by_origin: dict[str, list[int]] = {}
    for id, origin, body in claimed:
        by_key[(hashlib.sha256(body).hexdigest(), origin)] = id
        by_origin.setdefault(origin, []).append(id)
    reasons: dict[int, str] = {}
    for row in rejects:
        found = by_key.get((row["raw_sha256"], row["origin"]))
        if found is None:
            found = next(i for i in by_origin[row["origin"]] if i not in reasons)
        reasons[found] = row["reason"]
    return reasons
