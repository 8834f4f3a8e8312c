"""The files of an archive: named per month and part, written gzipped under a hidden
``.partial`` name and fsynced, read back and checked (line count, sha256 of the bytes on
disk) before ``drip-loader archive`` lets the rows they hold go (:mod:`.archive`).

The gzip stream carries no name and no time (``mtime=0``), so the same rows make the same
bytes: a run killed and run again writes what one run writes.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO

from ..errors import LoaderError
from ..progress import Progress

_FETCH = 10_000
"""Lines written per gzip write."""

ARCHIVED_REJECTS = re.compile(r"rejects-[0-9]{4}-[0-9]{2}(-[0-9]+)?\.ndjson\.gz")
"""Names of the rejects files of an archive: a directory load skips them (not events)."""


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


def partial_path(path: Path) -> Path:
    """Where a file is written before it is checked (hidden: a directory load skips it)."""
    return path.with_name(f".{path.name}.partial")


def final_path(partial: Path) -> Path:
    return partial.with_name(partial.name.removeprefix(".").removesuffix(".partial"))


def write_lines(path: Path, lines: Iterable[bytes], *, progress: Progress) -> ArchiveFile | None:
    """Write ``lines`` gzipped to ``path``'s partial name, fsynced; None when there are none
    (no file).  The checksum is of the compressed bytes, as they are on disk."""
    partial = partial_path(path)
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


def verify(written: ArchiveFile, progress: Progress) -> None:
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


def fsync_directory(path: Path) -> None:
    """Make the renames durable before the rows they replace are dropped."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
