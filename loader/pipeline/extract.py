"""Extract: read Drip webhook bodies from files, directories or stdin, as a stream.

A source is NDJSON (one body per line) or one JSON array of bodies, either of them
optionally gzip-compressed (detected by content, not by name).  Records come out as
``(origin, raw_bytes, size)`` with nothing parsed beyond what it takes to split them:
validation is the land stage's job.  Memory stays constant: a file is never held whole,
and a record longer than the size limit is cut at the limit (``size`` keeps its real
length so the rejects table can say so).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import SourceError
from ..warehouse.archive import ARCHIVED_REJECTS

OnBytes = Callable[[int], None]
"""Called with the number of (compressed) input bytes read since the last call."""

RawRecord = tuple[str, bytes, int]
"""``(origin, raw bytes, full size)``; ``raw`` is cut at the size limit when ``size`` is larger."""

_SUFFIXES = (".json", ".ndjson", ".jsonl", ".gz")
_BOM = b"\xef\xbb\xbf"
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """One input: a file path, or standard input (``path`` is None)."""

    name: str
    path: Path | None
    size: int | None
    """Bytes on disk, for progress; None for stdin."""


def discover_sources(paths: Sequence[str]) -> list[Source]:
    """Expand paths (``-`` is stdin, directories are walked) into sources, in a stable order.

    Raises:
        SourceError: a path does not exist or is not readable, or a directory holds no input.
    """
    sources: list[Source] = []
    for raw in paths:
        if raw == "-":
            sources.append(Source("<stdin>", None, None))
            continue
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.name.lower().endswith(_SUFFIXES)
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
                # an archive's rejects (records with their reason), not webhook bodies
                and not ARCHIVED_REJECTS.fullmatch(p.name)
            )
            if not found:
                raise SourceError(
                    f"{raw}: directory holds no .json, .ndjson, .jsonl or .gz files", path=raw
                )
            sources.extend(_file_source(p) for p in found)
        else:
            sources.append(_file_source(path))
    return sources


def _file_source(path: Path) -> Source:
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file; check the path", path=str(path)) from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror})", path=str(path)) from None
    if not os.access(path, os.R_OK):
        raise SourceError(
            f"{path}: permission denied; check the file's permissions", path=str(path)
        )
    return Source(str(path.resolve()), path, stat.st_size)


def read_records(
    source: Source, *, max_record_bytes: int, progress: OnBytes | None = None
) -> Iterator[RawRecord]:
    """Yield the records of one source.

    Raises:
        SourceError: the source cannot be opened or read (including a corrupt gzip stream);
            raised after the records read before the failure were yielded.
    """
    read = 0
    try:
        raw: BinaryIO = sys.stdin.buffer if source.path is None else open(source.path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise SourceError(
            f"{source.name}: cannot open ({exc.strerror})", path=source.name
        ) from None
    try:
        stream = _decompressed(raw)
        head = stream.peek(4096)[:4096].lstrip(_BOM).lstrip()
        reader = _array_records if head.startswith(b"[") else _ndjson_records
        meter = _Meter(raw, progress)
        for record in reader(stream, source.name, max_record_bytes, meter):
            read += 1
            yield record
        meter.finish()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        # The land stage lands every record yielded before it re-raises this error.
        raise SourceError(
            f"{source.name}: read failed after {read:,} record(s) ({exc}); those are landed, "
            "the rest of the file was not read: fix or replace the file, then run the same "
            "command again (records already landed are not loaded twice)",
            path=source.name,
        ) from None
    finally:
        if source.path is not None:
            raw.close()


def _decompressed(raw: BinaryIO) -> io.BufferedReader:
    buffered: Any = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[type-var]
    if buffered.peek(2)[:2] == b"\x1f\x8b":
        return io.BufferedReader(gzip.GzipFile(fileobj=buffered, mode="rb"), _READ_CHUNK)
    return buffered  # type: ignore[no-any-return]


class _Meter:
    """Report input progress in steps of about a megabyte, from the underlying file."""

    def __init__(self, raw: BinaryIO, progress: OnBytes | None) -> None:
        self._raw = raw
        self._progress = progress
        self._seen = 0
        self._seekable = progress is not None and raw.seekable()

    def tick(self) -> None:
        if not self._seekable:
            return
        position = self._raw.tell()
        if position - self._seen >= _READ_CHUNK:
            assert self._progress is not None
            self._progress(position - self._seen)
            self._seen = position

    def finish(self) -> None:
        if self._seekable:
            assert self._progress is not None
            self._progress(self._raw.tell() - self._seen)


def _ndjson_records(
    stream: io.BufferedReader | _Prefixed, name: str, limit: int, meter: _Meter, start: int = 0
) -> Iterator[RawRecord]:
    readline = stream.readline
    number = start
    while True:
        line = readline(limit + 1)
        if not line:
            return
        number += 1
        if number == 1:
            line = line.removeprefix(_BOM)
        if len(line) > limit and not line.endswith(b"\n"):
            # Over the limit: keep the first `limit` bytes, skip (and measure) the rest.
            head, size = line[:limit], len(line)
            while not line.endswith(b"\n"):
                line = readline(_READ_CHUNK)
                if not line:
                    break
                size += len(line)
            size -= len(line) - len(line.rstrip(b"\r\n"))  # the line break is not the record's
            yield f"{name}:{number}", head, size
            continue
        line = line.strip()
        if line:
            yield f"{name}:{number}", line, len(line)
        if number & 0x3FF == 0:
            meter.tick()


class _Prefixed:
    """``readline`` over some bytes already read, then the rest of the stream."""

    def __init__(self, prefix: bytes, stream: io.BufferedReader) -> None:
        self._prefix = io.BytesIO(prefix)
        self._stream = stream

    def readline(self, limit: int = -1) -> bytes:
        line = self._prefix.readline(limit)
        if line.endswith(b"\n") or (limit > 0 and len(line) >= limit):
            return line
        return line + self._stream.readline(limit - len(line) if limit > 0 else -1)


def _array_records(
    stream: io.BufferedReader, name: str, limit: int, meter: _Meter
) -> Iterator[RawRecord]:
    """Split one top-level JSON array into its elements, streaming.

    Elements are located with the C JSON scanner (``raw_decode``) on a sliding text
    window; the bytes between brackets are the record, exactly as in the file.
    """
    decoder = json.JSONDecoder()
    text = ""
    pos = 0
    line = 1
    index = 0
    eof = False
    expect_comma = False
    first = True

    def more() -> bool:
        nonlocal text, pos, eof
        if eof:
            return False
        chunk = stream.read(_READ_CHUNK)
        meter.tick()
        if not chunk:
            eof = True
            return False
        text = text[pos:] + chunk.decode("utf-8", "surrogateescape")
        pos = 0
        return True

    more()
    text = text.lstrip("\ufeff")
    while True:
        # skip white space, counting lines
        while True:
            stripped = len(text) - len(text[pos:].lstrip())
            line += text.count("\n", pos, stripped)
            pos = stripped
            if pos < len(text) or not more():
                break
        if pos >= len(text):
            if not first:
                yield f"{name}:{line}", b"<JSON array is not closed: missing ']' at end of file>", 0
            return
        char = text[pos]
        if first:
            first = False
            pos += 1  # the opening '['
            continue
        if char == "]":
            # Whatever follows the array is read as NDJSON: a file whose first line happens
            # to be an array is NDJSON, and nothing after it may be lost.
            rest = text[pos + 1 :].encode("utf-8", "surrogateescape")
            yield from _ndjson_records(_Prefixed(rest, stream), name, limit, meter, start=line - 1)
            return
        if expect_comma:
            if char != ",":
                tail = _remainder(text[pos:], stream, limit)
                yield f"{name}:{line}[{index}]", tail, len(tail)
                return
            pos += 1
            expect_comma = False
            continue
        while True:
            try:
                _, end = decoder.raw_decode(text, pos)
                break
            except RecursionError:
                # Nested deeper than the C scanner recurses: find its end by counting
                # brackets; validation rejects it (too deep) and the array goes on.
                end = _nested_end(text, pos)
                if end > 0:
                    break
            except json.JSONDecodeError:
                pass
            # Not a whole element yet: read more, unless there is no more or it is too long.
            if len(text) - pos > 2 * limit or not more():
                tail = _remainder(text[pos:], stream, limit)
                yield f"{name}:{line}[{index}]", tail, len(tail)
                return
        element = text[pos:end].encode("utf-8", "surrogateescape")
        size = len(element)
        yield f"{name}:{line}[{index}]", element if size <= limit else element[:limit], size
        line += text.count("\n", pos, end)
        pos = end
        index += 1
        expect_comma = True


def _nested_end(text: str, pos: int) -> int:
    """End of the array or object starting at ``text[pos]``, by bracket counting (no
    recursion; strings and escapes honoured), or -1 when ``text`` ends first."""
    depth = 0
    i = pos
    length = len(text)
    while i < length:
        char = text[i]
        if char == '"':
            i += 1
            while i < length and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def _remainder(text: str, stream: io.BufferedReader, limit: int) -> bytes:
    """What is left of a malformed array: kept up to the limit for the rejects table."""
    head = text.encode("utf-8", "surrogateescape")
    if len(head) < limit:
        head += stream.read(limit - len(head))
    return b"<malformed JSON array; the rest of the file was not read> " + head[:limit]
