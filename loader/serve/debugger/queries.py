"""What the debugger page asks the warehouse (only while someone watches; synchronous: run
them off the event loop)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine

from ...warehouse.db import set_search_path, translating
from ...warehouse.mapping import enabled_collections
from ...warehouse.sqlfiles import read_sql
from .view import Reject

REJECTS_SHOWN = 50
"""Newest rejects on the page."""
REJECT_HEAD = 8 * 1024
"""Characters of a reject's text sent to the page."""


@dataclass(frozen=True)
class WarehouseFacts:
    """The page's facts from the warehouse: the same for every replica."""

    enabled: frozenset[str]
    """Collections that are on (``_collections``)."""
    last_hour: dict[str, int]
    """Events received in the last hour per collection that is on (from ``tracks``)."""
    rejects: list[Reject]
    """The newest rows of ``_rejects`` that no retry has landed, newest first."""


def stored_origins(engine: Engine, *, schema: str, keys: Sequence[str]) -> dict[str, str]:
    """The origin each of ``keys`` was stored with in ``_raw_events`` (absent: not stored).

    Raises:
        DatabaseError: the warehouse did not answer.
    """
    if not keys:
        return {}
    with translating(), engine.connect() as conn:
        set_search_path(conn, schema)
        found = conn.execute(text(read_sql("serve/debugger_origins.sql")), {"keys": ",".join(keys)})
        origins = {row.key: row.origin for row in found}
        conn.rollback()
    return origins


def warehouse_facts(engine: Engine, *, schema: str) -> WarehouseFacts:
    """Collections on, their last hour, and the newest rejects.

    Raises:
        DatabaseError: the warehouse did not answer.
    """
    with translating(), engine.connect() as conn:
        set_search_path(conn, schema)
        enabled = frozenset(enabled_collections(conn))
        last_hour = {
            row.collection: int(row.events)
            for row in conn.execute(text(read_sql("serve/debugger_last_hour.sql")))
        }
        rejects = [
            Reject(row.id, row.rejected_at, row.reason, row.origin, int(row.raw_size), row.head)
            for row in conn.execute(
                text(read_sql("serve/debugger_rejects.sql")),
                {"limit": REJECTS_SHOWN, "head": REJECT_HEAD},
            )
        ]
        conn.rollback()
    return WarehouseFacts(enabled, last_hour, rejects)
