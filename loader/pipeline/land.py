"""Land: validate raw records and store them in ``_raw_events`` (or ``_rejects``), with COPY.

Records are validated in this process and taken in chunks of ``batch_size``.  Each chunk
is one transaction on one of ``workers`` connections, after the partitions of its months
exist (:func:`loader.warehouse.partitions.ensure_partitions`, in a transaction of its own):
COPY into a temporary stage, then one statement that lands the new events in
``_raw_events`` (once per event key) and maps them into the collection tables and
``tracks`` right away (the webhook receiver queues its events for a later transform
instead: :mod:`loader.serve.lander`).  Parsing the next chunk overlaps the database work on the
previous ones.  A crash loses at most the open chunks; a rerun lands them then (keys make
it idempotent).
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg2
import psycopg2.errors
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Engine

from ..counts import Counts
from ..domain.events import BadRecord, copy_timestamp, parse_for_copy
from ..errors import SourceError
from ..retry import Backoff
from ..warehouse.db import batch_session, retryable, translating
from ..warehouse.mapping import enabled_collections, map_params, mapping_statement
from ..warehouse.partitions import ensure_partitions, forget_partitions, missing_partition
from ..warehouse.sqlfiles import read_sql
from ..warehouse.tables import build_metadata
from .extract import RawRecord

DEADLOCK_BACKOFF = Backoff(first=0.05, cap=1.0, attempts=5, jitter=3.0)
"""Tries of a chunk that meets a deadlock or serialization failure, and the waits between
them: 0.05-0.2 s at first, spread at random so the two transactions do not meet again."""
_NONE_KNOWN: frozenset[str] = frozenset()


_Row = tuple[str, str, bool, str, bytes]
"""An accepted record waiting for its COPY line: ``(event, occurred_at, is_email, origin,
payload)``, the event name already escaped for COPY, ``occurred_at`` as COPY reads it
(:func:`copy_timestamp`); the rest as parsed."""


@dataclass
class _Chunk:
    keys: list[str] = field(default_factory=list)
    """Event keys of the accepted records, in input order."""
    rows: list[Any] = field(default_factory=list)
    """The rest of each accepted record, a :data:`_Row` flattened into the list (no tuple
    per record): its COPY line is only made if its key is new (:class:`_Lines`)."""
    accepted: int = 0
    not_email: int = 0
    rejects: list[dict[str, Any]] = field(default_factory=list)
    months: set[date] = field(default_factory=set)
    """UTC months of the accepted records: their partitions must exist before the COPY."""


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
    # COPY text format: backslash, tab, newline and carriage return must be escaped.  An
    # int operand makes `in` a memchr: several times faster than a one-byte bytes operand.
    if 0x5C in value:
        value = value.replace(b"\\", b"\\\\")
    if 0x09 in value:
        value = value.replace(b"\t", b"\\t")
    if 0x0A in value:
        value = value.replace(b"\n", b"\\n")
    if 0x0D in value:
        value = value.replace(b"\r", b"\\r")
    return value


def _unescape(value: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(value):
        byte = value[i]
        if byte == 0x5C and i + 1 < len(value):
            nxt = value[i + 1 : i + 2]
            out += {b"t": b"\t", b"n": b"\n", b"r": b"\r"}.get(nxt, nxt)
            i += 2
        else:
            out.append(byte)
            i += 1
    return bytes(out)


def _chunks(
    records: Iterable[RawRecord],
    *,
    batch_size: int,
    max_record_bytes: int,
    load_id: str,
    partitions: int = 1,
) -> Iterator[tuple[int, _Chunk]]:
    """Validate records into COPY chunks, each for one of ``partitions`` writers.

    Every copy of one event goes to the same partition (by its key), and a writer lands its
    chunks in order: so among retries of one event the earliest in the input is always the
    one kept, however the writers interleave, and a rerun after a crash keeps the same one.
    """
    building = [_Chunk() for _ in range(partitions)]
    events: dict[str, str] = {}  # escaped once: a file has a few dozen event names
    # A key's partition from its last byte, looked up rather than parsed per record.
    parts = {f"{byte:02x}": byte % partitions for byte in range(256)}
    failed: SourceError | None = None
    try:
        for origin, raw, size in records:
            if size > max_record_bytes:
                part = 0
                building[0].rejects.append(
                    reject_row(
                        reason=f"record is {size} bytes, over the limit of {max_record_bytes} "
                        "(raise --max-record-bytes / DRIP_LOADER_MAX_RECORD_BYTES to accept it)",
                        origin=origin,
                        raw=raw,
                        size=size,
                        load_id=load_id,
                    )
                )
            else:
                try:
                    key, event, occurred_at, is_email, payload, month = parse_for_copy(raw)
                except BadRecord as bad:
                    part = 0
                    building[0].rejects.append(
                        reject_row(
                            reason=bad.reason, origin=origin, raw=raw, size=size, load_id=load_id
                        )
                    )
                else:
                    part = parts[key[-2:]]
                    chunk = building[part]
                    chunk.accepted += 1
                    if not is_email:
                        chunk.not_email += 1
                    name = events.get(event)
                    if name is None:
                        name = events[event] = _escape_text(event)
                    chunk.keys.append(key)
                    # as COPY reads it: the probe for known keys sends it too
                    chunk.rows += (name, copy_timestamp(occurred_at), is_email, origin, payload)
                    chunk.months.add(month)
            chunk = building[part]
            if chunk.accepted + len(chunk.rejects) >= batch_size:
                yield part, chunk
                building[part] = _Chunk()
    except SourceError as exc:  # land what was read before, then raise it
        failed = exc
    for part, chunk in enumerate(building):
        if chunk.accepted or chunk.rejects:
            yield part, chunk
    if failed is not None:
        raise failed


def _escape_text(value: str) -> str:
    """:func:`_escape` for text (the origin, the event name), before it is encoded."""
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


class _Lines:
    """The COPY lines of a chunk's records whose keys are not in ``known``, made as they
    are read: a chunk is never held twice over (as records and as lines), and a writer
    thread allocates no chunk-sized buffer."""

    def __init__(self, chunk: _Chunk, known: set[str] | frozenset[str]) -> None:
        self._chunk = chunk
        self._known = known

    def __bool__(self) -> bool:
        """Whether there is any line to make."""
        return any(key not in self._known for key in self._chunk.keys)

    def __iter__(self) -> Iterator[bytes]:
        """The lines, each in three pieces."""
        known = self._known
        fields = iter(self._chunk.rows)
        rows: Iterator[_Row] = zip(fields, fields, fields, fields, fields, strict=True)
        for seq, (key, (name, occurred_at, is_email, origin, payload)) in enumerate(
            zip(self._chunk.keys, rows, strict=True), 1
        ):
            if key in known:
                continue
            if "\\" in origin or "\t" in origin or "\n" in origin or "\r" in origin:
                origin = _escape_text(origin)
            # The key is hex and the timestamp plain ISO 8601: neither needs escaping.  The
            # seq is the record's place in the chunk, for "the first copy wins".
            yield (
                f"{key}\t{seq}\t{name}\t{occurred_at}\t{'t' if is_email else 'f'}\t{origin}\t"
            ).encode("utf-8", "replace")
            yield _escape(payload)
            yield b"\n"


class _Reader:
    """A file-like view of COPY lines for ``copy_expert``, without joining them whole."""

    def __init__(self, data: bytes | _Lines) -> None:
        self._pieces = iter(data) if isinstance(data, _Lines) else iter((data,))

    def read(self, size: int = -1) -> bytes:
        # psycopg2 sends whatever comes back: at least ``size`` bytes (one line more) is fine
        batch: list[bytes] = []
        length = 0
        for piece in self._pieces:
            batch.append(piece)
            length += len(piece)
            if length >= size > 0:
                break
        return b"".join(batch)

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


def _copy(cursor: Any, data: bytes | _Lines, load_id: str) -> list[tuple[dict[str, Any], bool]]:
    """COPY lines into the stage; lines Postgres refuses are isolated by halving.

    Returns:
        A reject row and its ``is_email`` flag for each refused line.
    """
    try:
        cursor.execute("SAVEPOINT drip_copy")
        cursor.copy_expert(read_sql("land/copy_stage.sql"), _Reader(data), size=1 << 18)
        cursor.execute("RELEASE SAVEPOINT drip_copy")
        return []
    except psycopg2.errors.DataError as exc:
        cursor.execute("ROLLBACK TO SAVEPOINT drip_copy")
        lines = (b"".join(data) if isinstance(data, _Lines) else data).splitlines(keepends=True)
        if len(lines) > 1:
            middle = len(lines) // 2
            return _copy(cursor, b"".join(lines[:middle]), load_id) + _copy(
                cursor, b"".join(lines[middle:]), load_id
            )
        fields = lines[0].rstrip(b"\n").split(b"\t")
        origin, raw = _unescape(fields[5]).decode("utf-8", "replace"), _unescape(fields[6])
        reason = f"refused by Postgres: {str(exc.pgerror or exc).strip().splitlines()[0]}"
        row = reject_row(reason=reason, origin=origin, raw=raw, size=len(raw), load_id=load_id)
        return [(row, fields[4] == b"t")]


def _land(
    conn: Connection, chunk: _Chunk, fresh: _Lines, load_id: str
) -> tuple[Counts, list[dict[str, Any]]]:
    """Land ``chunk``'s ``fresh`` lines in the caller's transaction: COPY them into the
    stage, then one statement lands the new events and maps them.

    Returns:
        The chunk's counts, and its reject rows (not stored yet: the caller stores them).
    """
    result = Counts()
    refused: list[tuple[dict[str, Any], bool]] = []
    if fresh:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            refused = _copy(cursor, fresh, load_id)
        finally:
            cursor.close()
    accepted = chunk.accepted - len(refused)
    rejects = chunk.rejects + [row for row, _ in refused]
    if fresh:
        # which collections are on, locked until the commit
        names = enabled_collections(conn)
        statement = mapping_statement("land/insert_raw.sql", names)
        params = {**map_params(names), "load_id": load_id}
        row = conn.execute(statement, params).mappings().one()
        counts = {k: int(v) for k, v in row.items()}
        result.landed = counts.pop("events")
        result.rows_added.update(counts)
    result.read = accepted + len(rejects)
    result.duplicates = accepted - result.landed
    result.rejected = len(rejects)
    result.not_email = chunk.not_email - sum(1 for _, is_email in refused if not is_email)
    return result, rejects


def land_batch(
    conn: Connection,
    records: Iterable[RawRecord],
    *,
    schema: str,
    load_id: str,
    max_record_bytes: int,
) -> tuple[Counts, list[dict[str, Any]]]:
    """Validate and land ``records`` as ``load`` does, in the caller's transaction.

    The same checks (:func:`~loader.domain.events.parse_for_copy` and the size limit), the
    same dedupe and the same mapping as :func:`land_records`, as one chunk on ``conn``
    (its search path set to the schema), without committing: the caller can change other
    rows in the same transaction (``rejects retry`` marks what it landed).  The partitions
    of the chunk's months are made first, on a connection of their own (they must be
    committed before rows of those months are written).

    Returns:
        The counts, and a ``_rejects`` row (as :func:`reject_row` makes it, not stored)
        for each record that failed.
    """
    chunks = _chunks(
        records, batch_size=1 << 62, max_record_bytes=max_record_bytes, load_id=load_id
    )
    chunk = next(chunks, None)
    if chunk is None:
        return Counts(), []
    ensure_partitions(conn.engine, schema=schema, months=chunk[1].months)
    conn.execute(text(read_sql("land/create_stage.sql")))
    known: set[str] = set()
    if chunk[1].keys:
        keys, times = ",".join(chunk[1].keys), ",".join(chunk[1].rows[1::5])
        query = text(read_sql("land/known_keys.sql"))
        known = set(conn.execute(query, {"keys": keys, "times": times}).scalars())
    return _land(conn, chunk[1], _Lines(chunk[1], known), load_id)


class _Writer:
    """One connection landing chunks, each in its own transaction."""

    def __init__(
        self,
        engine: Engine,
        *,
        schema: str,
        load_id: str,
    ) -> None:
        self._schema = schema
        self._conn: Connection = engine.connect()
        batch_session(self._conn, schema)
        self._conn.execute(text(read_sql("land/create_stage.sql")))
        self._conn.commit()
        self._rejects = build_metadata(schema).tables[f"{schema}._rejects"]
        self._known = text(read_sql("land/known_keys.sql"))
        self._replaying = True
        self._chunks_seen = 0
        self._load_id = load_id

    def write(self, chunk: _Chunk) -> Counts:
        """Land one chunk in one transaction, after making its months' partitions (in a
        transaction of their own); a deadlock or serialization failure is retried, and so
        is a partition found missing (dropped since this process saw it)."""
        failures = 0
        while True:
            try:
                ensure_partitions(self._conn, schema=self._schema, months=chunk.months)
                return self._write(chunk)
            except (sa_exc.DBAPIError, psycopg2.Error) as exc:
                failures += 1
                if missing_partition(exc) and not DEADLOCK_BACKOFF.exhausted(failures):
                    forget_partitions(self._conn, schema=self._schema)
                    continue
                if not retryable(exc) or DEADLOCK_BACKOFF.exhausted(failures):
                    raise
                time.sleep(DEADLOCK_BACKOFF.delay(failures))

    def _write(self, chunk: _Chunk) -> Counts:
        conn = self._conn
        try:
            result, rejects = _land(conn, chunk, self._unknown(chunk), self._load_id)
            if rejects:
                conn.execute(insert(self._rejects).on_conflict_do_nothing(), rejects)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return result

    def _unknown(self, chunk: _Chunk) -> _Lines:
        """The chunk's COPY lines whose keys are not landed yet (all of them, usually).

        Asking costs a round trip, so a writer asks while replays are what it sees, and
        only now and then (every 8th chunk) while its chunks turn out to be all new.  Lines
        are made only for new keys: a replay never formats or escapes a payload.
        """
        self._chunks_seen += 1
        if not chunk.keys or (not self._replaying and self._chunks_seen % 8 != 1):
            return _Lines(chunk, _NONE_KNOWN)
        keys, times = ",".join(chunk.keys), ",".join(chunk.rows[1::5])
        known: set[str] = set(
            self._conn.execute(self._known, {"keys": keys, "times": times}).scalars()
        )
        self._replaying = len(known) * 100 >= len(chunk.keys)
        return _Lines(chunk, known)

    def close(self) -> None:
        self._conn.close()


def land_records(
    engine: Engine,
    records: Iterable[RawRecord],
    *,
    schema: str,
    load_id: str,
    batch_size: int,
    max_record_bytes: int,
    workers: int = 2,
    on_chunk: Callable[[Counts], None] | None = None,
) -> Counts:
    """Validate and land ``records``; return what happened to them.

    Args:
        engine: the warehouse database.
        records: ``(origin, raw, size)`` from :mod:`loader.pipeline.extract` (or a webhook request).
        schema: warehouse schema (validated).
        load_id: id of this run, stored with every landed and rejected record.
        batch_size: records per COPY and transaction.
        max_record_bytes: larger records are rejected.
        workers: connections landing chunks concurrently.
        on_chunk: called with each chunk's counts after it commits (progress).

    Raises:
        DatabaseError: the database failed; chunks committed before stay landed.
        SourceError: reading the input failed; every record read before the failure is
            landed first.
    """
    total = Counts()
    lock = threading.Lock()
    workers = max(1, workers)
    # One chunk waiting per writer: enough to keep it busy, and memory bounded.
    todo: list[queue.Queue[_Chunk | None]] = [queue.Queue(maxsize=1) for _ in range(workers)]
    failures: list[BaseException] = []

    def work(writer: _Writer, inbox: queue.Queue[_Chunk | None]) -> None:
        try:
            while (chunk := inbox.get()) is not None:
                if failures:
                    continue  # drain: another writer failed, the run is stopping
                try:
                    with translating():
                        result = writer.write(chunk)
                except BaseException as exc:
                    failures.append(exc)
                    continue
                with lock:
                    total.add(result)
                    if on_chunk is not None:
                        on_chunk(result)
        finally:
            writer.close()

    with translating():
        writers = [_Writer(engine, schema=schema, load_id=load_id) for _ in range(workers)]
    threads = [
        threading.Thread(target=work, args=(w, inbox), daemon=True)
        for w, inbox in zip(writers, todo, strict=True)
    ]
    for thread in threads:
        thread.start()
    try:
        for part, chunk in _chunks(
            records,
            batch_size=batch_size,
            max_record_bytes=max_record_bytes,
            load_id=load_id,
            partitions=workers,
        ):
            if failures:
                break
            todo[part].put(chunk)
    finally:
        for inbox in todo:
            inbox.put(None)
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    return total
