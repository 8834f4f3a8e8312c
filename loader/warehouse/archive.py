"""Archive: move whole months of raw events out of the warehouse into gzip NDJSON files.

``drip-loader archive --before DATE --to DIR`` writes, for every month (of the event's
time, UTC) before DATE's month, ``DIR/raw-YYYY-MM.ndjson.gz`` (each line a stored webhook
body, so ``drip-loader load DIR`` reads it back) and ``DIR/rejects-YYYY-MM.ndjson.gz``
(the records rejected in that month, by ``rejected_at``, with reason and origin; a
directory load skips these).  It reads each file back, checks its line count and sha256,
and only then, in one transaction, compares the count with the month's rows under a lock,
records the files in ``_archives`` and drops the month's raw partition (and deletes its
rejects).  Collection tables, ``tracks`` and ``subscribers`` keep their rows.

Crash-safe and idempotent: a ledger row is written before any file, naming the files the
run may write (so a rerun overwrites its own files, never anyone else's), files are
written under a hidden ``.partial`` name and fsynced, and they get their final names in the
transaction that drops the rows.  A kill at any point leaves either the month in the
warehouse (the rerun writes it again) or the month dropped with its checked files and a
finished ledger row (the rerun skips it).  A month whose raw events come back later (a load
of the archive, a late file) is archived again as its next part (``raw-YYYY-MM-2...``).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date
from pathlib import Path
from string import Template
from typing import IO, Any

import orjson
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from ..errors import ConfigError, LoaderError
from ..progress import QUIET, Progress
from . import migrate
from .db import retryable, set_search_path, translating
from .partitions import (
    forget_partitions,
    month_bounds,
    month_of,
    partition_months,
    partition_name,
)
from .sqlfiles import read_sql

_QUOTE = postgresql.dialect().identifier_preparer.quote  # type: ignore[no-untyped-call]

ARCHIVED_REJECTS = re.compile(r"rejects-[0-9]{4}-[0-9]{2}(-[0-9]+)?\.ndjson\.gz")
"""Names of the rejects files of an archive: a directory load skips them (not events)."""

_FETCH = 10_000
"""Rows read per round trip while a file is written."""
_ATTEMPTS = 3
"""Times a month is written again when rows arrived meanwhile (or a deadlock hit the drop)."""


def file_name(kind: str, month: date, part: int) -> str:
    """``raw-2026-10.ndjson.gz``; a later part of the same month ``raw-2026-10-2.ndjson.gz``."""
    suffix = "" if part == 1 else f"-{part}"
    return f"{kind}-{month:%Y-%m}{suffix}.ndjson.gz"


@dataclass(frozen=True)
class ArchiveFile:
    """One checked file: where, how many lines, its bytes and their sha256."""

    path: Path
    lines: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class MonthArchived:
    """One month moved out: its raw file and its rejects file (None when it had none)."""

    month: date
    part: int
    raw: ArchiveFile | None
    rejects: ArchiveFile | None
    seconds: float

    @property
    def events(self) -> int:
        return self.raw.lines if self.raw else 0

    @property
    def rejected(self) -> int:
        return self.rejects.lines if self.rejects else 0


@dataclass(frozen=True)
class ArchiveReport:
    """What ``drip-loader archive`` did."""

    schema: str
    before: date
    """The date asked for."""
    cutoff: date
    """The first month kept: ``before``'s month (whole months only)."""
    directory: Path
    months: list[MonthArchived] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def events(self) -> int:
        return sum(m.events for m in self.months)

    def lines(self) -> list[str]:
        """The report as ``archive`` prints it."""
        out = []
        if self.before != self.cutoff:
            out.append(
                f"{self.before} is in the middle of a month: only whole months are archived, "
                f"so {self.cutoff:%Y-%m} stays in the warehouse."
            )
        if not self.months:
            out.append(
                f"Nothing to archive before {self.cutoff}: no raw events or rejects of "
                "earlier months are left in the warehouse."
            )
            return out
        out.append(
            f"Archived {len(self.months)} month(s) before {self.cutoff} to {self.directory} "
            f"in {self.seconds:.1f} s: {self.events:,} raw events, "
            f"{sum(m.rejected for m in self.months):,} rejects."
        )
        for m in self.months:
            files = [
                f"{f.path.name} ({f.lines:,} {what}, {f.bytes / 1e6:,.1f} MB)"
                for f, what in ((m.raw, "events"), (m.rejects, "rejects"))
                if f is not None
            ]
            out.append(f"  {m.month:%Y-%m}  " + ", ".join(files) + f"  {m.seconds:.1f} s")
        out.append(
            "Each file was read back and checked (lines, sha256) before the month's raw "
            "events left the warehouse; collection tables and tracks keep their rows. "
            f"`drip-loader load {self.directory}` brings the raw events back."
        )
        return out

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values (``--json``)."""
        return {
            "schema": self.schema,
            "before": self.before.isoformat(),
            "cutoff": self.cutoff.isoformat(),
            "directory": str(self.directory),
            "events": self.events,
            "seconds": self.seconds,
            "months": [
                {
                    "month": f"{m.month:%Y-%m}",
                    "part": m.part,
                    "seconds": m.seconds,
                    **{
                        kind: None
                        if f is None
                        else {
                            "file": str(f.path),
                            "lines": f.lines,
                            "bytes": f.bytes,
                            "sha256": f.sha256,
                        }
                        for kind, f in (("raw", m.raw), ("rejects", m.rejects))
                    },
                }
                for m in self.months
            ],
        }


class _Changed(Exception):
    """Rows of the month arrived between writing its file and the drop: write it again."""


class _Hashing:
    """A binary file that hashes and counts what is written through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()


def archive_months(
    engine: Engine,
    *,
    schema: str,
    before: date,
    to: Path,
    progress: Progress = QUIET,
) -> ArchiveReport:
    """Move every raw event older than ``before``'s month, and the rejects of those months,
    into checked gzip NDJSON files in ``to``, a month at a time (see the module).

    Args:
        engine: the warehouse database.
        schema: warehouse schema (validated).
        before: keep this date's month and later; a date inside a month keeps that month.
        to: directory for the files (made if missing).
        progress: one phase per month (rows written), then its check (bytes read).

    Raises:
        ConfigError: the schema is not at head, ``before`` is after the start of the current
            month, ``to`` cannot be used, a file there is not this warehouse's, or another
            archive is running.
        LoaderError: events of a month are not transformed yet (run ``load`` first), or a
            month kept changing.
        DatabaseError: the database failed; months finished before stay archived.
    """
    migrate.require_head(engine, schema=schema, then="run `drip-loader migrate` first")
    started = time.perf_counter()
    cutoff = month_of(before)
    try:
        to.mkdir(parents=True, exist_ok=True)
        probe = to / ".drip-loader-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write archive files in {to}: {exc.strerror}") from None
    directory = to.resolve()
    report = ArchiveReport(schema=schema, before=before, cutoff=cutoff, directory=directory)
    with translating(), engine.connect() as conn:
        set_search_path(conn, schema)
        current = month_of(conn.execute(select(func.now())).scalar_one())
        if cutoff > current:
            raise ConfigError(
                f"--before {before} reaches into {cutoff:%Y-%m}, a month that is not over: "
                f"archive only whole past months (--before {current} or earlier)"
            )
        if not conn.execute(text(read_sql("archive/lock.sql")), {"schema": schema}).scalar():
            raise ConfigError(
                f"another drip-loader archive is running on schema {schema!r}: wait for it to "
                "finish (a killed one lets go at once), then run again"
            )
        conn.commit()
        try:
            for month in _months(conn, schema, cutoff):
                done = _archive_month(conn, schema, month, directory, progress)
                if done is not None:
                    report.months.append(done)
        finally:
            # the lock goes with the session anyway: a failed unlock (the database gone)
            # must not hide why the run stopped
            with contextlib.suppress(LoaderError, sa_exc.DBAPIError):
                conn.rollback()
                conn.execute(text(read_sql("archive/unlock.sql")), {"schema": schema})
                conn.commit()
    forget_partitions(engine, schema=schema)  # dropped months: ask the database next time
    return ArchiveReport(
        schema=schema,
        before=before,
        cutoff=cutoff,
        directory=directory,
        months=report.months,
        seconds=round(time.perf_counter() - started, 3),
    )


def _months(conn: Connection, schema: str, cutoff: date) -> list[date]:
    """Months before ``cutoff`` with raw events or rejects left, and unfinished ones."""
    low, _ = month_bounds(cutoff)
    raw_months = partition_months(conn, schema=schema)["_raw_events"]
    months = {m for m in raw_months if m < cutoff}
    months.update(
        r.month for r in conn.execute(text(read_sql("archive/reject_months.sql")), {"before": low})
    )
    months.update(
        r.month for r in conn.execute(text(read_sql("archive/unfinished.sql"))) if r.month < cutoff
    )
    conn.commit()
    return sorted(months)


def _archive_month(
    conn: Connection, schema: str, month: date, directory: Path, progress: Progress
) -> MonthArchived | None:
    started = time.perf_counter()
    low, high = month_bounds(month)
    bounds = {"low": low, "high": high}
    unfinished = {
        r.part: r
        for r in conn.execute(text(read_sql("archive/unfinished.sql")))
        if r.month == month
    }
    has_raw = bool(conn.execute(text(read_sql("archive/has_raw.sql")), bounds).scalar())
    has_rejects = month in {
        r.month for r in conn.execute(text(read_sql("archive/reject_months.sql")), {"before": high})
    }
    if not has_raw and not has_rejects:
        for part in unfinished:  # nothing left: a run that stopped after another finished it
            conn.execute(
                text(read_sql("archive/forget_intent.sql")), {"month": month, "part": part}
            )
        conn.commit()
        return None
    part = (
        min(unfinished)
        if unfinished
        else int(
            conn.execute(text(read_sql("archive/next_part.sql")), {"month": month}).scalar_one()
        )
    )
    paths = {kind: directory / file_name(kind, month, part) for kind in ("raw", "rejects")}
    ours = set()
    if part in unfinished:
        ours = {unfinished[part].raw_file, unfinished[part].rejects_file}
    for path in paths.values():
        if path.exists() and str(path) not in ours:
            raise ConfigError(
                f"{path} exists and was not written by an archive of this warehouse that is "
                "still to finish: move it away or choose another --to, then run again"
            )
    _check_mapped(conn, month, bounds)
    conn.execute(
        text(read_sql("archive/intent.sql")),
        {
            "month": month,
            "part": part,
            "raw_file": str(paths["raw"]),
            "rejects_file": str(paths["rejects"]),
        },
    )
    conn.commit()
    for attempt in range(_ATTEMPTS):
        progress.start(f"Archiving {month:%Y-%m}", None)
        raw = _write(conn, paths["raw"], _raw_lines(conn, bounds), progress=progress)
        rejects = _write(conn, paths["rejects"], _reject_lines(conn, bounds), progress=progress)
        conn.commit()
        progress.start(f"Checking {month:%Y-%m}", None)
        for written in (raw, rejects):
            if written is not None:
                _verify(written, progress)
        try:
            _drop(conn, schema, month, part, bounds, raw, rejects)
        except _Changed:
            continue
        except (sa_exc.DBAPIError, LoaderError) as exc:
            if not retryable(exc.__cause__ or exc) or attempt == _ATTEMPTS - 1:
                raise
            continue
        return MonthArchived(
            month=month,
            part=part,
            raw=_final(raw),
            rejects=_final(rejects),
            seconds=round(time.perf_counter() - started, 3),
        )
    raise LoaderError(
        f"raw events of {month:%Y-%m} kept arriving while it was archived ({_ATTEMPTS} "
        "tries): stop the loads of that month, then run archive again (nothing of it was dropped)"
    )


def _final(written: ArchiveFile | None) -> ArchiveFile | None:
    if written is None:
        return None
    return ArchiveFile(_final_path(written.path), written.lines, written.bytes, written.sha256)


def _partial(path: Path) -> Path:
    """Where a file is written before it is checked (hidden: a directory load skips it)."""
    return path.with_name(f".{path.name}.partial")


def _final_path(partial: Path) -> Path:
    return partial.with_name(partial.name.removeprefix(".").removesuffix(".partial"))


def _check_mapped(conn: Connection, month: date, bounds: dict[str, str]) -> None:
    row = conn.execute(text(read_sql("archive/unmapped.sql")), bounds).one()
    conn.commit()
    if row.pending or row.snapshots:
        raise LoaderError(
            f"{month:%Y-%m} still has {row.pending:,} event(s) to transform and "
            f"{row.snapshots:,} subscriber snapshot(s) to merge, which read its raw events: "
            "run `drip-loader load` (with no file it transforms what is pending), then "
            "archive again"
        )


def _raw_lines(conn: Connection, bounds: dict[str, str]) -> Iterable[bytes]:
    # a server-side cursor for this statement only: memory stays flat however big the month
    streamed = text(read_sql("archive/raw_lines.sql")).execution_options(
        stream_results=True, yield_per=_FETCH
    )
    result = conn.execute(streamed, bounds)
    for row in result:
        yield str(row[0]).encode("utf-8")


def _reject_lines(conn: Connection, bounds: dict[str, str]) -> Iterable[bytes]:
    # a server-side cursor for this statement only: memory stays flat however big the month
    streamed = text(read_sql("archive/reject_lines.sql")).execution_options(
        stream_results=True, yield_per=_FETCH
    )
    result = conn.execute(streamed, bounds)
    for r in result:
        line: dict[str, Any] = {
            "rejected_at": r.rejected_at.astimezone(UTC).isoformat(),
            "reason": r.reason,
            "origin": r.origin,
            "load_id": r._load_id,
            "raw_size": r.raw_size,
            "raw_sha256": r.raw_sha256,
            "raw": r.raw_text,
        }
        if r.raw_bytes is not None:  # the text is lossy (not UTF-8, or a NUL): the bytes too
            line["raw_base64"] = base64.b64encode(bytes(r.raw_bytes)).decode("ascii")
        yield orjson.dumps(line)


def _write(
    conn: Connection, path: Path, lines: Iterable[bytes], *, progress: Progress
) -> ArchiveFile | None:
    """Write ``lines`` gzipped to ``path``'s partial name, fsynced; None when there are none
    (no file).  The checksum is of the compressed bytes, as they are on disk."""
    partial = _partial(path)
    count = 0
    with open(partial, "wb") as handle:
        hashing = _Hashing(handle)
        with gzip.GzipFile(fileobj=hashing, mode="wb", compresslevel=6, mtime=0) as zipped:  # type: ignore[arg-type]
            batch: list[bytes] = []
            for line in lines:
                batch.append(line)
                if len(batch) == _FETCH:
                    zipped.write(b"\n".join(batch) + b"\n")
                    count += len(batch)
                    progress.advance(len(batch))
                    batch.clear()
            if batch:
                zipped.write(b"\n".join(batch) + b"\n")
                count += len(batch)
                progress.advance(len(batch))
        handle.flush()
        os.fsync(handle.fileno())
    if count == 0:
        partial.unlink()
        return None
    return ArchiveFile(partial, count, hashing.size, hashing.sha.hexdigest())


def _verify(written: ArchiveFile, progress: Progress) -> None:
    """Read the file back from disk: the same sha256, a whole gzip stream, the same lines."""
    sha = hashlib.sha256()
    with open(written.path, "rb") as handle:
        while block := handle.read(1 << 20):
            sha.update(block)
    lines = 0
    with gzip.open(written.path, "rb") as unzipped:
        while block := unzipped.read(1 << 20):
            lines += block.count(b"\n")
            progress.advance(len(block))
    if sha.hexdigest() != written.sha256 or lines != written.lines:
        raise LoaderError(
            f"{written.path} does not read back as written ({lines:,} lines, expected "
            f"{written.lines:,}; sha256 {'matches' if sha.hexdigest() == written.sha256 else 'differs'}): "
            "check the disk of --to, then run archive again (nothing of the month was dropped)"
        )


def _drop(
    conn: Connection,
    schema: str,
    month: date,
    part: int,
    bounds: dict[str, str],
    raw: ArchiveFile | None,
    rejects: ArchiveFile | None,
) -> None:
    """In one transaction: the counts again under the month's lock, the ledger finished,
    the files given their final names, the rejects deleted and the raw partition dropped."""
    name = partition_name("_raw_events", month)
    partition = f"{_QUOTE(schema)}.{_QUOTE(name)}"
    with conn.begin():
        exists = conn.execute(select(func.to_regclass(partition))).scalar() is not None
        if exists:
            conn.execute(
                text(Template(read_sql("archive/lock_month.sql")).substitute(partition=partition))
            )
        rows = int(conn.execute(text(read_sql("archive/count_raw.sql")), bounds).scalar_one())
        if rows != (raw.lines if raw else 0):
            raise _Changed()
        _check_mapped_in(conn, month, bounds)
        deleted = conn.execute(text(read_sql("archive/delete_rejects.sql")), bounds).rowcount
        if deleted != (rejects.lines if rejects else 0):
            raise _Changed()
        conn.execute(
            text(read_sql("archive/done.sql")),
            {
                "month": month,
                "part": part,
                "raw_file": str(_final_path(raw.path)) if raw else None,
                "raw_events": raw.lines if raw else 0,
                "raw_sha256": raw.sha256 if raw else None,
                "rejects_file": str(_final_path(rejects.path)) if rejects else None,
                "rejects": rejects.lines if rejects else 0,
                "rejects_sha256": rejects.sha256 if rejects else None,
            },
        )
        for written in (raw, rejects):
            if written is not None:
                os.replace(written.path, _final_path(written.path))
        _fsync_directory(_final_path((raw or rejects).path).parent)  # type: ignore[union-attr]
        if exists:
            conn.execute(
                text(Template(read_sql("archive/drop.sql")).substitute(partition=partition))
            )


def _check_mapped_in(conn: Connection, month: date, bounds: dict[str, str]) -> None:
    row = conn.execute(text(read_sql("archive/unmapped.sql")), bounds).one()
    if row.pending or row.snapshots:
        raise _Changed()


def _fsync_directory(path: Path) -> None:
    """Make the renames durable before the rows they replace are dropped."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
