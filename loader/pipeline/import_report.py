"""What ``import-segment`` did, or would do: the report it renders for a person, a CSV reader
and a JSON reader (:class:`loader.results.Result`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..results import Rows, json_value


@dataclass(frozen=True)
class Cutoff:
    """Where the copy of one event type stops: rows at or after ``at`` are not copied."""

    at: datetime
    reason: str


@dataclass
class TableReport:
    """One table of the import."""

    table: str
    in_source: bool
    source_rows: int = 0
    """Rows in Segment's table (tracks: those of the six email events)."""
    before_cutoff: int = 0
    """Of those, the rows before their cutoff: what the import copies over all its runs."""
    to_copy: int = 0
    """Rows this run reads: before the cutoff and after the last key copied by earlier runs."""
    read: int = 0
    added: int = 0
    """Rows this run inserted (a row already there is skipped)."""
    tracks_made: int = 0
    """Collections: tracks rows made for rows whose event Segment's tracks lacked."""
    extra: list[tuple[str, int]] = field(default_factory=list)
    """Segment columns with no counterpart, and their non-null values before the cutoff."""


_COLUMNS = ("table", "in_segment", "before_cutoff", "to_copy", "read", "added", "tracks_made")


@dataclass
class ImportReport:
    """What :func:`loader.pipeline.import_segment.import_segment` did, or would do (``dry_run``)."""

    source_schema: str
    schema: str
    dry_run: bool
    cutoffs: dict[str, Cutoff]
    """Per email table (event type)."""
    tables: list[TableReport]
    """In the order copied: tracks, then the six email tables."""
    subscribers_added: int = 0
    subscribers_updated: int = 0
    subscribers_replaced: int = 0
    """Email-keyed subscriber rows removed because a real snapshot has that email now."""
    load_id: str | None = None
    seconds: float = 0.0

    @property
    def added(self) -> int:
        """Rows added to every table by this run (tracks rows made for collections too)."""
        return sum(t.added + t.tracks_made for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values (``--format json``)."""
        return {
            "source_schema": self.source_schema,
            "schema": self.schema,
            "dry_run": self.dry_run,
            "load_id": self.load_id,
            "seconds": self.seconds,
            "cutoffs": {
                name: {"at": json_value(c.at), "reason": c.reason}
                for name, c in self.cutoffs.items()
            },
            "tables": [
                {
                    "table": t.table,
                    "in_segment": t.source_rows if t.in_source else None,
                    "before_cutoff": t.before_cutoff,
                    "to_copy": t.to_copy,
                    "read": t.read,
                    "added": t.added,
                    "tracks_made": t.tracks_made,
                    "not_copied": dict(t.extra),
                }
                for t in self.tables
            ],
            "subscribers": {
                "added": self.subscribers_added,
                "updated": self.subscribers_updated,
                "replaced": self.subscribers_replaced,
            },
        }

    def rows(self) -> Rows:
        """One row per table (``--format csv``)."""
        return Rows(
            _COLUMNS,
            [
                (
                    t.table,
                    t.source_rows if t.in_source else None,
                    t.before_cutoff,
                    t.to_copy,
                    t.read,
                    t.added,
                    t.tracks_made,
                )
                for t in self.tables
            ],
        )

    def lines(self) -> list[str]:
        """The report for a person."""
        if self.dry_run:
            head = (
                f'Dry run: nothing was copied. From schema "{self.source_schema}" into '
                f'"{self.schema}", a run would copy every row before these cutoffs:'
            )
        else:
            rate = sum(t.read for t in self.tables) / self.seconds if self.seconds else 0.0
            head = (
                f'Copied from schema "{self.source_schema}" into "{self.schema}" in '
                f"{self.seconds:.1f} s ({rate:,.0f} rows/s), every row before these cutoffs:"
            )
        lines = [head]
        width = max(len(name) for name in self.cutoffs)
        for name, cutoff in self.cutoffs.items():
            lines.append(f"  {name:<{width}}  {cutoff.at.isoformat()}  ({cutoff.reason})")
        table = Rows(
            ("table", "in Segment", "before cutoff", "to copy", "read", "added", "tracks made")
            if not self.dry_run
            else ("table", "in Segment", "before cutoff", "to copy"),
            [
                (
                    t.table,
                    t.source_rows if t.in_source else "(none)",
                    t.before_cutoff,
                    t.to_copy,
                    *(() if self.dry_run else (t.read, t.added, t.tracks_made)),
                )
                for t in self.tables
            ],
        )
        lines += ["  " + line for line in table.lines()]
        if not self.dry_run:
            lines.append(
                f"Subscribers known only from Segment's history: {self.subscribers_added:,} "
                f"added, {self.subscribers_updated:,} updated, {self.subscribers_replaced:,} "
                "replaced by a snapshot drip-loader received."
            )
        extra = [t for t in self.tables if t.extra]
        if extra:
            lines.append(
                "Segment columns with no counterpart here, not copied (they stay in the Segment "
                "schema), with their non-null values before the cutoff:"
            )
            lines += [f"  {t.table}: " + ", ".join(f"{c} {n:,}" for c, n in t.extra) for t in extra]
        return lines
