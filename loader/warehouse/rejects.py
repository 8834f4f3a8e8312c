"""The rejects table read back: ``drip-loader rejects list`` and ``rejects show``.

A record that cannot be mapped is kept in ``_rejects`` (spec §6) with its reason, where it
came from and its raw text (the exact bytes too when the text is lossy).  A record over the
size limit is kept only as its head: ``raw_size`` is its full length, longer than what is
stored, so it can be read here but never landed (:func:`truncated`).  ``rejects retry``
(:mod:`loader.pipeline.retry`) marks what it lands (``landed_at``) and logs every attempt
in ``_reject_retries``; a landed reject stays readable, and is listed on request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Table, and_, func, select
from sqlalchemy.engine import Connection, Engine

from ..errors import RejectNotFound
from ..results import Record, Rows
from . import migrate
from .db import translating
from .tables import build_metadata
from .text import head, printable, utc_text

HEAD_WIDTH = 40
"""Characters of the body ``rejects list`` shows."""
REASON_WIDTH = 60
"""Characters of the reason ``rejects list`` shows in its table."""


def _rejects(schema: str) -> Table:
    return build_metadata(schema).tables[f"{schema}._rejects"]


def stored_bytes(rejects: Table) -> ColumnElement[Any]:
    """The bytes stored of each reject: the exact ones, else its text (lossless then)."""
    return func.coalesce(rejects.c.raw_bytes, func.convert_to(rejects.c.raw_text, "UTF8"))


def truncated(rejects: Table) -> ColumnElement[bool]:
    """Whether a reject was cut at the size limit: only its head is stored."""
    return rejects.c.raw_size > func.octet_length(stored_bytes(rejects))


@dataclass(frozen=True)
class RejectLine:
    """One reject as ``rejects list`` shows it."""

    id: int
    rejected_at: datetime
    origin: str
    """``file:line`` (``[index]`` in a JSON array), or ``webhook:<client>:<arrival time>``."""
    reason: str
    """Why it is rejected now (after the last retry, if any)."""
    size: int
    """Its full size in bytes (more than is stored when it was cut at the size limit)."""
    head: str
    """The start of its body, on one printable line."""
    landed_at: datetime | None
    """When a retry landed it; None while it is rejected."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rejected_at": self.rejected_at.isoformat(),
            "origin": self.origin,
            "reason": self.reason,
            "size": self.size,
            "head": self.head,
            "landed_at": None if self.landed_at is None else self.landed_at.isoformat(),
        }

    def cells(self) -> tuple[str, str, str, str, str, str]:
        """Its cells in ``rejects list``'s table, as a person reads them (the reason cut
        to :data:`REASON_WIDTH`: ``rejects show`` has it whole)."""
        reason = printable(self.reason)
        if self.landed_at is not None:
            reason = f"landed {utc_text(self.landed_at)} (was: {reason})"
        if len(reason) > REASON_WIDTH:
            reason = reason[: REASON_WIDTH - 1] + "…"
        return (
            str(self.id),
            utc_text(self.rejected_at),
            f"{self.size:,}",
            printable(self.origin),
            reason,
            self.head,
        )


@dataclass(frozen=True)
class RejectList:
    """The rejects that match a ``rejects list``, newest first, and how many match in all."""

    rejects: tuple[RejectLine, ...]
    matching: int
    """Rejects matching the filters, beyond the limit too."""
    filtered: bool = False
    """Whether ``--since`` or ``--reason`` narrowed the list."""

    def as_dict(self) -> dict[str, Any]:
        return {"matching": self.matching, "rejects": [r.as_dict() for r in self.rejects]}

    def rows(self) -> Rows:
        """One row per reject (CSV): the values of :meth:`RejectLine.as_dict`."""
        columns = ("id", "rejected_at", "origin", "reason", "size", "head", "landed_at")
        return Rows(columns, [tuple(r.as_dict()[c] for c in columns) for r in self.rejects])

    def lines(self) -> list[str]:
        """The rejects as an aligned table, then how many there are and what to run next."""
        if not self.rejects:
            return ["No rejects match." if self.filtered else "No rejects."]
        cells = [LIST_COLUMNS, *(r.cells() for r in self.rejects)]
        widths = [max(len(row[i]) for row in cells) for i in range(len(LIST_COLUMNS) - 1)]
        table = [
            "  ".join(
                [
                    *(
                        cell.rjust(width) if i in (0, 2) else cell.ljust(width)
                        for i, (cell, width) in enumerate(zip(row, widths, strict=False))
                    ),
                    row[-1],
                ]
            )
            for row in cells
        ]
        shown = len(self.rejects)
        more = f"{shown:,} of {self.matching:,}" if shown < self.matching else f"{shown:,}"
        return [
            *table,
            f"{more} reject(s), newest first. Read one: drip-loader rejects show ID; "
            "land those that pass now: drip-loader rejects retry ID... or --all.",
        ]


LIST_COLUMNS = ("id", "rejected at", "bytes", "origin", "reason", "body starts")
"""The columns of ``rejects list``'s table."""


@dataclass(frozen=True)
class RetryAttempt:
    """One re-validation of a reject by ``rejects retry``."""

    retried_at: datetime
    load_id: str
    outcome: str
    """``landed`` or ``rejected``."""
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "retried_at": self.retried_at.isoformat(),
            "load_id": self.load_id,
            "outcome": self.outcome,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Reject(Record):
    """One reject in full, as ``rejects show`` prints it."""

    id: int
    rejected_at: datetime
    load_id: str
    """The run that rejected it."""
    origin: str
    reason: str
    first_reason: str | None
    """The reason it was first rejected with, when a retry has changed ``reason``."""
    size: int
    stored: int
    """Bytes stored: ``size`` unless it was cut at the size limit."""
    sha256: str
    """Of the stored bytes."""
    body: bytes
    """The stored bytes, exactly."""
    landed_at: datetime | None
    landed_load_id: str | None
    retries: tuple[RetryAttempt, ...]

    @property
    def truncated(self) -> bool:
        """Cut at the size limit: only the head is stored, so it can never be landed."""
        return self.size > self.stored

    def body_text(self) -> tuple[str, str]:
        """The body for a person, and how it is shown (``JSON, pretty-printed``, ...).

        Pretty-printed when it is JSON; otherwise as received, bytes that are not UTF-8
        shown as ``\\xNN``; control characters escaped either way.
        """
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError as bad:
            text = self.body.decode("utf-8", "backslashreplace")
            return printable(
                text, lines=True
            ), f"not valid UTF-8 from byte {bad.start}: bytes shown as \\xNN"
        try:
            pretty = orjson.dumps(orjson.loads(self.body), option=orjson.OPT_INDENT_2).decode()
        except orjson.JSONDecodeError:
            note = "as received"
            if self.truncated:
                note = f"its first {self.stored:,} of {self.size:,} bytes, as received"
            return printable(text, lines=True), note
        return printable(pretty, lines=True), "JSON, pretty-printed"

    def as_dict(self) -> dict[str, Any]:
        body, shown = self.body_text()
        return {
            "id": self.id,
            "rejected_at": self.rejected_at.isoformat(),
            "load_id": self.load_id,
            "origin": self.origin,
            "reason": self.reason,
            "first_reason": self.first_reason,
            "size": self.size,
            "stored": self.stored,
            "truncated": self.truncated,
            "sha256": self.sha256,
            "landed_at": None if self.landed_at is None else self.landed_at.isoformat(),
            "landed_load_id": self.landed_load_id,
            "retries": [attempt.as_dict() for attempt in self.retries],
            "body": self.body.decode("utf-8", "replace"),
            "body_shown": shown,
        }

    def lines(self) -> list[str]:
        """What ``rejects show`` prints for a person."""
        body, shown = self.body_text()
        if self.landed_at is not None:
            state = f"landed {utc_text(self.landed_at)} by retry run {self.landed_load_id}"
        else:
            state = "rejected"
        size = f"{self.size:,} bytes"
        if self.truncated:
            size += (
                f", cut at the size limit: only the first {self.stored:,} are kept, so it "
                "cannot be retried"
            )
        lines = [
            f"Reject {self.id}: {state}",
            f"  rejected at  {utc_text(self.rejected_at)} by run {self.load_id}",
            f"  origin       {printable(self.origin)}",
            f"  reason       {printable(self.reason)}",
        ]
        if self.first_reason is not None and self.first_reason != self.reason:
            lines.append(f"  first reason {printable(self.first_reason)}")
        lines.append(f"  size         {size}")
        lines.append(f"  sha256       {self.sha256}")
        if self.retries:
            lines.append("Retries:")
            lines += [
                f"  {utc_text(a.retried_at)}  run {a.load_id}  {a.outcome}"
                + (f": {printable(a.reason)}" if a.reason else "")
                for a in self.retries
            ]
        lines.append(f"Body ({shown}):")
        lines.append(body)
        return lines


def _filters(
    rejects: Table, *, since: datetime | None, reason: str | None, landed: bool
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if not landed:
        where.append(rejects.c.landed_at.is_(None))
    if since is not None:
        where.append(rejects.c.rejected_at >= since)
    if reason:
        # a plain substring, any case: no LIKE wildcards to escape in what a person types
        where.append(func.strpos(func.lower(rejects.c.reason), reason.lower()) > 0)
    return where


def list_rejects(
    engine: Engine,
    *,
    schema: str,
    since: datetime | None = None,
    reason: str | None = None,
    limit: int = 50,
    landed: bool = False,
) -> RejectList:
    """The rejects still rejected (and with ``landed``, those a retry landed), newest first.

    Args:
        since: only those rejected at or after this time.
        reason: only those whose reason contains this text (any case).
        limit: at most this many (``matching`` counts them all).
        landed: include the rejects a retry has landed.

    Raises:
        ConfigError: the schema is not at the newest revision.
        DatabaseError: the database failed.
    """
    _require_head(engine, schema)
    rejects = _rejects(schema)
    where = and_(True, *_filters(rejects, since=since, reason=reason, landed=landed))
    # Only the head of each body leaves the server: a reject can be a megabyte.
    body_head = func.left(rejects.c.raw_text, HEAD_WIDTH * 2)
    query = (
        select(
            rejects.c.id,
            rejects.c.rejected_at,
            rejects.c.origin,
            rejects.c.reason,
            rejects.c.raw_size,
            body_head,
            rejects.c.landed_at,
        )
        .where(where)
        .order_by(rejects.c.rejected_at.desc(), rejects.c.id.desc())
        .limit(limit)
    )
    with translating(), engine.connect() as conn:
        found = conn.execute(query).all()
        matching = conn.execute(select(func.count()).select_from(rejects).where(where)).scalar_one()
    return RejectList(
        rejects=tuple(
            RejectLine(
                id=row[0],
                rejected_at=row[1],
                origin=row[2],
                reason=row[3],
                size=row[4],
                head=head(row[5], HEAD_WIDTH),
                landed_at=row[6],
            )
            for row in found
        ),
        matching=int(matching),
        filtered=since is not None or bool(reason),
    )


def get_reject(engine: Engine, reject_id: int, *, schema: str) -> Reject:
    """One reject with its body and its retries.

    Raises:
        RejectNotFound: there is no reject with that id.
        ConfigError: the schema is not at the newest revision.
        DatabaseError: the database failed.
    """
    _require_head(engine, schema)
    with translating(), engine.connect() as conn:
        return read_reject(conn, reject_id, schema=schema)


def _require_head(engine: Engine, schema: str) -> None:
    migrate.require_head(engine, schema=schema, then="run `drip-loader migrate` first")


def read_reject(conn: Connection, reject_id: int, *, schema: str) -> Reject:
    """:func:`get_reject` on an open connection."""
    tables = build_metadata(schema).tables
    rejects, retries = tables[f"{schema}._rejects"], tables[f"{schema}._reject_retries"]
    body = stored_bytes(rejects)
    row = (
        conn.execute(
            select(rejects, body.label("body"), func.octet_length(body).label("stored")).where(
                rejects.c.id == reject_id
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise RejectNotFound([reject_id], schema=schema)
    attempts = conn.execute(
        select(retries.c.retried_at, retries.c.load_id, retries.c.outcome, retries.c.reason)
        .where(retries.c.reject_id == reject_id)
        .order_by(retries.c.retried_at, retries.c.load_id)
    ).all()
    return Reject(
        id=row["id"],
        rejected_at=row["rejected_at"],
        load_id=row["_load_id"],
        origin=row["origin"],
        reason=row["reason"],
        first_reason=row["first_reason"],
        size=row["raw_size"],
        stored=row["stored"],
        sha256=row["raw_sha256"],
        body=bytes(row["body"]),
        landed_at=row["landed_at"],
        landed_load_id=row["landed_load_id"],
        retries=tuple(RetryAttempt(a[0], a[1], a[2], a[3]) for a in attempts),
    )


def count_rejects(conn: Connection, *, schema: str) -> tuple[int, int]:
    """Rejects still rejected, and those a retry has landed (``status``)."""
    rejects = _rejects(schema)
    still, landed = conn.execute(
        select(
            func.count().filter(rejects.c.landed_at.is_(None)),
            func.count().filter(rejects.c.landed_at.is_not(None)),
        )
    ).one()
    return int(still), int(landed)
