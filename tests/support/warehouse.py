"""Helpers to load test input and read the warehouse back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loader.config import Settings
from loader.counts import Counts
from loader.domain.events import COLLECTIONS
from loader.pipeline.extract import RawRecord
from loader.pipeline.run import RunReport, run_pipeline
from loader.serve.lander import GroupCommitLander, RecordBatch

TABLES = ("tracks", *COLLECTIONS)


def write_ndjson(path: Path, lines: Iterable[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def load_lines(
    settings: Settings, tmp_path: Path, lines: Iterable[bytes], name: str = "in.ndjson"
) -> RunReport:
    return run_pipeline(settings, [str(write_ndjson(tmp_path / name, lines))])


def queue_records(engine: Engine, records: Iterable[RawRecord], *, load_id: str) -> Counts:
    """Land ``records`` as the webhook receiver does (one group commit): into
    ``_raw_events`` and queued in ``_pending`` for a later transform, not mapped yet."""
    batch = RecordBatch()
    for origin, raw, _ in records:
        batch.add(origin, raw, load_id=load_id)

    async def land() -> Counts:
        lander = GroupCommitLander(
            engine, schema="drip", load_id=load_id, writers=1, max_queued_events=len(batch) + 1
        )
        lander.start()
        try:
            await lander.submit(batch)
        finally:
            await lander.stop()
        return lander.stats

    return asyncio.run(land())


def rows(engine: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def one(engine: Engine, sql: str, **params: Any) -> dict[str, Any]:
    found = rows(engine, sql, **params)
    assert len(found) == 1, found
    return found[0]


def snapshot(
    engine: Engine, schema: str = "drip", *, tables: tuple[str, ...] = TABLES
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables`` and the landing tables (minus write times), sorted: equal
    snapshots = equal tables."""
    result: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in (*tables, "_raw_events", "_rejects"):
            columns = [
                c
                for c in conn.execute(
                    sa.text(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position"
                    ),
                    {"s": schema, "t": table},
                ).scalars()
                # where and when a record arrived is not part of what the warehouse says
                if c
                not in (
                    "uuid_ts",
                    "received_at",
                    "sent_at",
                    "_load_id",
                    "rejected_at",
                    "id",
                    "origin",
                )
                or (c == "id" and table != "_rejects")
                or (c == "origin" and table == "_rejects")
            ]
            select = sa.select(*(sa.column(c) for c in columns)).select_from(
                sa.table(table, schema=schema)
            )
            result[table] = sorted(tuple(str(v) for v in r) for r in conn.execute(select))
    return result


def start_load(url: str, path: Path, **env: str) -> subprocess.Popen[str]:
    """``python -m loader load PATH --format json`` against ``url`` in a child process (fault tests
    kill it); ``env`` adds ``DRIP_LOADER_*`` settings."""
    return subprocess.Popen(
        [sys.executable, "-m", "loader", "load", str(path), "--format", "json"],
        env={**os.environ, "DRIP_LOADER_DATABASE_URL": url, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
