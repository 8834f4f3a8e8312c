"""Counts: what a run, or a part of one, did; the one counts type of every stage.

A landed chunk, a committed webhook group, a whole ``load``, a ``serve`` process and a
forwarding run all count in :class:`Counts` (a stage that did not run counts 0), so
adding up parts is :meth:`Counts.add` and every report prints and stores the same names.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .results import Record

_NOT_ADDED = ("rows_added", "seconds")


@dataclass
class Counts(Record):
    """Counts by stage; landing keeps ``read == landed + duplicates + rejected``."""

    read: int = 0
    """Records read (from a file, or a webhook request)."""
    landed: int = 0
    """Records new to ``_raw_events``."""
    duplicates: int = 0
    """Records whose event was already landed (a retry, a rerun): stored once."""
    rejected: int = 0
    """Records kept in ``_rejects`` with the reason."""
    not_email: int = 0
    """Accepted records that are not email events (kept raw; part of landed/duplicates)."""
    transformed: int = 0
    """Events mapped into the collection tables and ``tracks``."""
    rows_added: Counter[str] = field(default_factory=Counter)
    """Rows inserted per table."""
    sent: int = 0
    """Events Segment accepted (marked sent)."""
    failed: int = 0
    """Events marked failed for Segment: it can never accept them as they are."""
    deferred: int = 0
    """Events whose batch kept failing: still pending, retried by the next run."""
    requeued: int = 0
    """Failed events put back in the queue by ``emit --retry-failed``."""
    queued: int = 0
    """Events already in the warehouse, queued because this run turned forwarding on."""
    pruned: int = 0
    """Sent outbox rows older than the retention window, deleted by this run."""
    requests: int = 0
    """HTTP requests made to Segment, retries included."""
    retries: int = 0
    seconds: float = 0.0

    def add(self, other: Counts) -> None:
        """Add ``other``'s counts to these (``seconds`` is not a count: it is kept)."""
        for name in (f.name for f in fields(Counts)):
            if name not in _NOT_ADDED:
                setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rows_added.update(other.rows_added)

    def as_dict(self) -> dict[str, Any]:
        """Every field as plain JSON values (``--format json``, ``_runs.counts``)."""
        values = asdict(self)
        values["rows_added"] = dict(self.rows_added)
        return values
