"""``status``'s table of the last runs: which command, when (in UTC), how it ended, how long
it took and what it did, in columns that stay aligned whatever the values.

Each command counts different things (a load reads records, an emit sends events, a sync
sees Drip records), so the last column says what the command did in its own words; the
columns before it are fixed facts every run has.  A running ``serve`` writes its counts
every few seconds, so its line shows them live.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from .text import printable, utc_text

HEADER = ("started", "command", "status", "took", "what it did")


class RunFacts(Protocol):
    """What a line needs of one ``_runs`` row."""

    @property
    def command(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def finished_at(self) -> datetime | None: ...
    @property
    def counts(self) -> Mapping[str, Any] | None: ...
    @property
    def error(self) -> str | None: ...


def run_lines(runs: Sequence[RunFacts], *, now: datetime, indent: str = "  ") -> list[str]:
    """One line per run under a header, columns aligned; a run's error on the next line.

    Args:
        runs: newest first.
        now: the database's time, for how long a run still going has taken so far.
    """
    if not runs:
        return [f"{indent}none yet"]
    rows = [
        (
            utc_text(run.started_at),
            printable(run.command),
            run.status,
            _took(run, now),
            summary(run.command, run.counts or {}) + (" (live)" if run.status == "running" else ""),
        )
        for run in runs
    ]
    widths = [max(len(row[i]) for row in (HEADER, *rows)) for i in range(4)]

    def line(cells: tuple[str, ...]) -> str:
        started, command, status, took, did = cells
        return indent + "  ".join(
            (
                started.ljust(widths[0]),
                command.ljust(widths[1]),
                status.ljust(widths[2]),
                took.rjust(widths[3]),
                did,
            )
        )

    lines = [line(HEADER)]
    for run, row in zip(runs, rows, strict=True):
        lines.append(line(row))
        if run.error:
            lines.append(f"{indent}    error: {printable(run.error)}")
    return lines


def _took(run: RunFacts, now: datetime) -> str:
    if run.finished_at is not None:
        return duration((run.finished_at - run.started_at).total_seconds())
    if run.status == "running":
        return duration((now - run.started_at).total_seconds())
    return "-"  # its process is gone: when it stopped is not known


def duration(seconds: float) -> str:
    """``0.4 s``, ``42 s``, ``12 min``, ``3 h 05 min``, ``2 d 03 h``."""
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


def _n(counts: Mapping[str, Any], name: str) -> str:
    value = counts.get(name)
    return f"{value:,}" if isinstance(value, int) else "-"


def summary(command: str, counts: Mapping[str, Any]) -> str:
    """What a run did, from its ``_runs.counts``, in the words of its command."""
    if not counts:
        return "no counts recorded"
    n = counts.get
    if command == "emit":
        parts = [f"sent {_n(counts, 'sent')}", f"failed {_n(counts, 'failed')}"]
        parts += [f"{name} {_n(counts, name)}" for name in ("deferred", "requeued") if n(name)]
        return ", ".join(parts)
    if command == "drip sync":
        tables: Mapping[str, Mapping[str, int]] = n("tables") or {}
        total = {k: sum(t.get(k, 0) for t in tables.values()) for k in ("seen", "added", "deleted")}
        return (
            f"seen {total['seen']:,}, added {total['added']:,}, deleted {total['deleted']:,} "
            f"in {len(tables)} tables ({_n(counts, 'requests')} requests)"
        )
    if command == "rejects retry":
        parts = [
            f"retried {_n(counts, 'read')}",
            f"landed {_n(counts, 'landed')}",
            f"duplicates {_n(counts, 'duplicates')}",
            f"still rejected {_n(counts, 'rejected')}",
        ]
        if n("cut"):
            parts.append(f"cut at the size limit {_n(counts, 'cut')}")
        return ", ".join(parts)
    # load, serve: what arrived and what became of it
    parts = [
        f"read {_n(counts, 'read')}",
        f"landed {_n(counts, 'landed')}",
        f"duplicates {_n(counts, 'duplicates')}",
        f"rejected {_n(counts, 'rejected')}",
    ]
    if n("sent") or n("failed"):
        parts.append(f"sent to Segment {_n(counts, 'sent')}")
    return ", ".join(parts)
