"""Land: validate raw records and store them in ``_raw_events`` (or ``_rejects``), with COPY.

Records are taken in chunks of ``batch_size``; each chunk is one transaction: COPY into a
temporary stage, move into the landing table once per event key, queue the new keys in
``_pending``, store the chunk's rejects.  A crash loses at most the open chunk, and a
rerun lands it then (keys make it idempotent).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg2.errors
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Engine

from .db import translating
from .events import BadRecord, parse_record
from .extract import RawRecord
from .sqlfiles import read_sql
from .tables import build_metadata


@dataclass
class LandResult:
    """Counts of one landing; ``read == landed + duplicates + rejected``."""

    read: int = 0
    landed: int = 0
    duplicates: int = 0
    rejected: int = 0
    not_email: int = 0
    """Accepted records that are not email events (kept raw; part of landed/duplicates)."""

    def add(self, other: LandResult) -> None:
        for name in ("read", "landed", "duplicates", "rejected", "not_email"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


_Row = tuple[bytes, str, bytes, bool]
"""(COPY line, origin, raw record, is_email) per accepted record."""


@dataclass
class _Chunk:
    rows: list[_Row] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    not_email: int = 0
    refused: int = 0
    """Rows Postgres refused at COPY (moved to ``rejects``)."""


def reject_row(*, reason: str, origin: str, raw: bytes, size: int, load_id: str) -> dict[str, Any]:
    """A ``_rejects`` row: readable text always, the exact bytes when the text is lossy."""
    try:
        raw_text = raw.decode("utf-8")
        lossless = "\x00" not in raw_text
    except UnicodeDecodeError:
        raw_text, lossless = raw.decode("utf-8", "replace"), False
    return {
        "_load_id": load_id,
        "reason": reason,
        "origin": origin,
        "raw_text": raw_text.replace("\x00", "\ufffd"),
        "raw_bytes": None if lossless else raw,
        "raw_size": size,
        "raw_sha256": hashlib.sha256(raw).hexdigest(),
    }


def _escape(value: bytes) -> bytes:
    # COPY text format: backslash, tab, newline and carriage return must be escaped.
    if b"\\" in value:
        value = value.replace(b"\\", b"\\\\")
    if b"\t" in value:
        value = value.replace(b"\t", b"\\t")
    if b"\n" in value:
        value = value.replace(b"\n", b"\\n")
    if b"\r" in value:
        value = value.replace(b"\r", b"\\r")
    return value


def _chunks(
    records: Iterable[RawRecord], *, batch_size: int, max_record_bytes: int, load_id: str
) -> Iterator[_Chunk]:
    chunk = _Chunk()
    for origin, raw, size in records:
        if size > max_record_bytes:
            chunk.rejects.append(
                reject_row(
                    reason=f"record is {size} bytes, over the limit of {max_record_bytes} "
                    "(raise DRIP_LOADER_MAX_RECORD_BYTES to accept it)",
                    origin=origin,
                    raw=raw,
                    size=size,
                    load_id=load_id,
                )
            )
        else:
            try:
                rec = parse_record(raw)
            except BadRecord as bad:
                chunk.rejects.append(
                    reject_row(reason=bad.reason, origin=origin, raw=raw, size=size, load_id=load_id)
                )
            else:
                if not rec.is_email:
                    chunk.not_email += 1
                line = b"\t".join(
                    (
                        rec.key.encode(),
                        _escape(rec.event.encode()),
                        rec.occurred_at.isoformat().encode(),
                        b"t" if rec.is_email else b"f",
                        _escape(origin.encode("utf-8", "replace")),
                        _escape(rec.payload),
                    )
                )
                chunk.rows.append((line + b"\n", origin, raw, rec.is_email))
        if len(chunk.rows) + len(chunk.rejects) >= batch_size:
            yield chunk
            chunk = _Chunk()
    if chunk.rows or chunk.rejects:
        yield chunk


class _RowsReader:
    """A file-like view of COPY lines, for ``copy_expert`` (which calls ``read(size)``)."""

    def __init__(self, rows: list[_Row]) -> None:
        self._lines = iter(row[0] for row in rows)

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        total = 0
        for line in self._lines:
            parts.append(line)
            total += len(line)
            if total >= size > 0:
                break
        return b"".join(parts)

    def readline(self, size: int = -1) -> bytes:
        return next(self._lines, b"")


def _copy(conn: Connection, rows: list[_Row], chunk: _Chunk, load_id: str) -> None:
    """COPY rows into the stage; rows Postgres refuses are isolated by halving and rejected."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute("SAVEPOINT drip_copy")
        cursor.copy_expert(read_sql("land/020_copy_stage.sql"), _RowsReader(rows), size=1 << 18)
        cursor.execute("RELEASE SAVEPOINT drip_copy")
    except psycopg2.errors.DataError as exc:
        cursor.execute("ROLLBACK TO SAVEPOINT drip_copy")
        if len(rows) > 1:
            middle = len(rows) // 2
            _copy(conn, rows[:middle], chunk, load_id)
            _copy(conn, rows[middle:], chunk, load_id)
            return
        _, origin, raw, is_email = rows[0]
        chunk.refused += 1
        chunk.not_email -= not is_email
        reason = f"refused by Postgres: {str(exc.pgerror or exc).strip().splitlines()[0]}"
        chunk.rejects.append(reject_row(reason=reason, origin=origin, raw=raw, size=len(raw), load_id=load_id))
    finally:
        cursor.close()


def land_records(
    engine: Engine,
    records: Iterable[RawRecord],
    *,
    schema: str,
    load_id: str,
    batch_size: int,
    max_record_bytes: int,
    received_at: datetime | None = None,
    on_chunk: Callable[[LandResult], None] | None = None,
) -> LandResult:
    """Validate and land ``records``; return what happened to them.

    Args:
        engine: the warehouse database.
        records: ``(origin, raw, size)`` from :mod:`loader.extract` (or a webhook request).
        schema: warehouse schema (validated).
        load_id: id of this run, stored with every landed and rejected record.
        batch_size: records per COPY and transaction.
        max_record_bytes: larger records are rejected.
        received_at: arrival time to record; default the landing transaction's time.
        on_chunk: called with each chunk's counts after it commits (progress).

    Raises:
        DatabaseError: the database failed; chunks committed before stay landed.
    """
    rejects_table = build_metadata(schema).tables[f"{schema}._rejects"]
    total = LandResult()
    with translating(), engine.connect() as conn:
        conn.execute(text("SELECT set_config('search_path', :schema, false)"), {"schema": schema})
        conn.execute(text(read_sql("land/010_create_stage.sql")))
        conn.commit()
        for chunk in _chunks(
            records, batch_size=batch_size, max_record_bytes=max_record_bytes, load_id=load_id
        ):
            if chunk.rows:
                _copy(conn, chunk.rows, chunk, load_id)
                landed = conn.execute(
                    text(read_sql("land/030_move_staged.sql")),
                    {"load_id": load_id, "received_at": received_at},
                ).scalar_one()
            else:
                landed = 0
            if chunk.rejects:
                conn.execute(insert(rejects_table).on_conflict_do_nothing(), chunk.rejects)
            conn.commit()
            accepted = len(chunk.rows) - chunk.refused
            result = LandResult(
                read=accepted + len(chunk.rejects),
                landed=landed,
                duplicates=accepted - landed,
                rejected=len(chunk.rejects),
                not_email=chunk.not_email,
            )
            total.add(result)
            if on_chunk is not None:
                on_chunk(result)
    return total
