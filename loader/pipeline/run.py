"""The pipeline: extract → land → transform (→ emit), as one run with a report.

``run_pipeline`` is what ``drip-loader load`` calls.  Every run is recorded in ``_runs``
(:mod:`loader.warehouse.runs`) with its counts and how it ended, so ``status`` can show the last runs.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from ..config import DEFAULT_OUTBOX_RETENTION, Settings
from ..counts import Counts
from ..errors import EmitError, ForwardingOff, LoaderError, StepFailed
from ..progress import QUIET, Progress
from ..warehouse import migrate
from ..warehouse.db import open_database
from ..warehouse.runs import recorded_run
from .extract import Input, discover_inputs, read_records
from .land import land_records
from .transform import ADDED_COUNTS, run_transforms

if TYPE_CHECKING:
    from .emit import EmitReport


@dataclass(kw_only=True)
class RunReport(Counts):
    """Summary of one run (``load``)."""

    load_id: str
    schema: str
    sources: list[str] = field(default_factory=list)
    without_events: list[str] = field(default_factory=list)
    """Sources that gave no accepted record (empty, or every record rejected): each is
    also warned about as it is landed."""
    forwarding: bool = False
    """Whether the run forwarded to Segment (``emit=True`` with a write key): ``sent``
    and ``failed`` count then."""

    def lines(self) -> list[str]:
        rate = self.read / self.seconds if self.seconds else 0.0
        lines = [
            f"Run {self.load_id}: {len(self.sources)} source(s), {self.seconds:.2f} s"
            + (f" ({rate:,.0f} records/s)" if self.read else "")
        ]
        for label, value in (
            ("read", self.read),
            ("landed", self.landed),
            ("duplicates", self.duplicates),
            ("rejected", self.rejected),
            ("not an email event", self.not_email),
            ("transformed", self.transformed),
        ):
            lines.append(f"  {label:<20}{value:>12,}")
        lines.append("  rows added:")
        lines += [f"    {table:<22}{added:>12,}" for table, added in self.rows_added.items()]
        if self.forwarding:
            lines.append(f"  {'sent to Segment':<20}{self.sent:>12,}")
            if self.failed:
                label = "failed for Segment"
                lines.append(f"  {label:<20}{self.failed:>12,}  (see drip-loader emit --help)")
        if self.rejected:
            lines.append(
                f"  {self.rejected} rejected record(s) kept in {self.schema}._rejects with the "
                "reason and origin."
            )
        return lines


_NOT_COUNTS = ("load_id", "schema", "sources", "without_events")
"""Fields of a :class:`RunReport` that are not counts: ``_runs`` keeps the id and the sources
in columns of their own, and lives in the schema."""


def run_pipeline(
    settings: Settings,
    paths: Sequence[str],
    *,
    migrate_first: bool = True,
    announce: Callable[[str], None] = lambda line: None,
    progress: Progress | None = None,
    emit: bool = False,
) -> RunReport:
    """Land every record of ``paths`` and transform everything pending.

    With no paths, only the transform runs (the scheduled job).  With ``emit``, then
    forward every event Segment has not confirmed (off, and announced, without
    ``settings.segment_write_key``).

    Raises:
        LoaderError: the run could not complete (bad path, database down, ...); records
            landed before the failure stay landed and are transformed by the next run.
    """
    started = time.perf_counter()
    progress = progress or QUIET
    # fail on a bad path before touching the database
    sources = discover_inputs(paths, note=announce)
    report = RunReport(
        load_id=uuid.uuid4().hex,
        schema=settings.schema,
        sources=[s.name for s in sources],
        rows_added=Counter(dict.fromkeys(ADDED_COUNTS, 0)),
    )
    with open_database(settings, announce=announce) as engine:
        try:
            migrate.ensure_schema(engine, schema=settings.schema, migrate_first=migrate_first)
        except LoaderError as exc:
            raise StepFailed("migrate", report.load_id, exc) from exc

        def counts() -> dict[str, Any]:
            report.seconds = round(time.perf_counter() - started, 3)
            return {k: v for k, v in report.as_dict().items() if k not in _NOT_COUNTS}

        with recorded_run(
            engine,
            schema=settings.schema,
            load_id=report.load_id,
            command="load",
            sources="\n".join(report.sources) or None,
            counts=counts,
        ):
            step = "land"
            try:
                for source in sources:
                    _land_source(engine, settings, source, report, progress, announce)
                step = "transform"
                progress.start("Transforming", None)

                merge_shown = False

                def merging(snapshots: int) -> None:
                    nonlocal merge_shown
                    if not merge_shown:  # the merge is a phase of its own: seconds at 1M events
                        progress.start("Merging subscribers", None)
                        merge_shown = True
                    progress.advance(snapshots)

                result = run_transforms(
                    engine,
                    schema=settings.schema,
                    batch_size=settings.transform_batch_size,
                    merge_parts=settings.writers,
                    on_batch=progress.advance,
                    on_merge=merging,
                )
                report.transformed += result.events
                report.rows_added.update(result.rows_added)
                if emit:
                    step = "emit"
                    _forward(engine, settings, report, announce, progress)
            except LoaderError as exc:
                raise StepFailed(step, report.load_id, exc) from exc
    return report


def _land_source(
    engine: Engine,
    settings: Settings,
    source: Input,
    report: RunReport,
    progress: Progress,
    announce: Callable[[str], None],
) -> None:
    """Land one source into ``report``; warn when it gave no accepted record."""
    before = (report.read, report.rejected)
    _land(engine, settings, source, report, progress)
    read, rejected = report.read - before[0], report.rejected - before[1]
    if read > rejected:
        return
    report.without_events.append(source.name)
    # Exit 0 all the same: what was read is kept, and other sources may be fine; but a
    # scheduled job that loads nothing for days must not look like one that works.
    found = (
        "it holds no record"
        if not read
        else f"all {read:,} record(s) were rejected (kept in {settings.schema}._rejects "
        f"with the reason, origin {source.name}:<line>)"
    )
    announce(f"Warning: no Drip event in {source.name}: {found}")


def _land(
    engine: Engine, settings: Settings, source: Input, report: RunReport, progress: Progress
) -> None:
    progress.start(f"Landing {source.name}", source.size)
    records = read_records(
        source, max_record_bytes=settings.max_record_bytes, progress=progress.advance
    )

    def landed(result: Counts) -> None:
        # Counted per committed chunk, so a run stopped midway records what it did.
        report.add(result)
        report.transformed += result.landed  # file loads map what they land at once

    land_records(
        engine,
        records,
        schema=settings.schema,
        load_id=report.load_id,
        batch_size=settings.batch_size,
        max_record_bytes=settings.max_record_bytes,
        workers=settings.writers,
        on_chunk=landed,
    )


def _forward(
    engine: Engine,
    settings: Settings,
    report: RunReport,
    announce: Callable[[str], None],
    progress: Progress,
) -> None:
    if not settings.segment_write_key:
        announce(
            "Forwarding to Segment is off: no write key (set SEGMENT_WRITE_KEY or pass "
            "--segment-write-key)."
        )
        return
    progress.start("Forwarding to Segment", None)
    from .emit import emit_events  # httpx is loaded only when forwarding is on

    try:
        emitted = emit_events(
            engine,
            schema=settings.schema,
            write_key=settings.segment_write_key,
            host=settings.segment_host,
            on_batch=progress.advance,
            outbox_retention=settings.outbox_retention,
        )
    except ForwardingOff as off:  # the load itself is done: say so, do not fail it
        announce(f"Not forwarded: {off}.")
        return
    report.forwarding = True
    report.add(emitted)


def forward(
    engine: Engine,
    *,
    schema: str,
    write_key: str | None,
    host: str,
    retry_failed: bool = False,
    batch_size: int,
    turn_on: bool = False,
    outbox_retention: timedelta = DEFAULT_OUTBOX_RETENTION,
) -> EmitReport:
    """``drip-loader emit``: forward every event
    Segment has not confirmed (:func:`loader.pipeline.emit.emit_events`), recorded in
    ``_runs`` (command ``emit``) with its counts, however it ends.

    Raises:
        LoaderError: the schema is behind head, or as :func:`~loader.pipeline.emit.emit_events`.
    """
    from .emit import emit_events  # httpx is loaded only when forwarding

    done = Counts()

    def counts() -> dict[str, Any]:
        return {k: v for k, v in done.as_dict().items() if k != "schema"}

    with recorded_run(
        engine, schema=schema, load_id=uuid.uuid4().hex, command="emit", sources=None, counts=counts
    ):
        try:
            report = emit_events(
                engine,
                schema=schema,
                write_key=write_key,
                host=host,
                retry_failed=retry_failed,
                batch_size=batch_size,
                turn_on=turn_on,
                outbox_retention=outbox_retention,
            )
        except EmitError as exc:
            done.add(exc.report)  # what Segment accepted before it stopped
            done.seconds = exc.report.seconds
            raise
        done.add(report)
        done.seconds = report.seconds
    return report
