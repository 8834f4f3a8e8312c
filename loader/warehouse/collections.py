"""Turn collections on and off (``drip-loader collections``), and list them.

The setting lives in the warehouse (``_collections``) so that ``serve``, scheduled
``load``s and ``rebuild`` agree.  Turning a collection on maps, in the same transaction,
the events of its Drip event(s) already landed that the transform passed over (a
backfill from ``_raw_events``), under the lock every mapping transaction takes
(``sql/collections/lock_shared.sql``): each landed event is mapped exactly once, by the
backfill or by a transform, while ``serve`` and ``load`` run.  Turning it on again adds
nothing.  Turning one off stops mapping new events of its type; its rows stay.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine

from ..domain.registry import BY_NAME, COLLECTIONS, CollectionNames
from ..results import Rows
from . import migrate
from .db import batch_session, set_search_path, translating
from .mapping import backfill_statement, in_order, map_params
from .sqlfiles import read_sql
from .tables import build_metadata


@dataclass(frozen=True)
class CollectionState:
    """One collection as ``collections list`` shows it."""

    name: str
    drip_events: tuple[str, ...]
    enabled: bool
    rows: int
    on_by_default: bool
    changed_at: datetime | None


STATE_COLUMNS = tuple(f.name for f in fields(CollectionState))


class CollectionList(Rows):
    """Every collection's state: ``collections list`` (a table: one row per collection)."""

    states: tuple[CollectionState, ...]

    def __init__(self, states: Sequence[CollectionState]) -> None:
        super().__init__(STATE_COLUMNS, [astuple(s) for s in states])
        object.__setattr__(self, "states", tuple(states))  # a frozen dataclass's way

    def lines(self) -> list[str]:
        lines = [f"  {'collection':<42}{'':<5}{'rows':>12}  Drip event(s)"]
        for name, events, enabled, rows, _, _ in self.values:
            on = "on" if enabled else "off"
            lines.append(f"  {name:<42}{on:<5}{rows:>12,}  {', '.join(events)}")
        return lines


@dataclass
class CollectionChange:
    """What ``collections enable`` / ``disable`` did."""

    enabled: bool
    """Whether the collections were turned on (else off)."""
    changed: list[str] = field(default_factory=list)
    """Collections whose setting changed."""
    unchanged: list[str] = field(default_factory=list)
    """Collections that already had the asked setting."""
    rows_added: Counter[str] = field(default_factory=Counter)
    """Rows the backfill added per table (enable only)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "rows_added": dict(self.rows_added),
        }

    def lines(self) -> list[str]:
        verb = "on" if self.enabled else "off"
        lines = [f"Turned {verb}: {', '.join(self.changed)}"] if self.changed else []
        if self.unchanged:
            lines.append(f"Already {verb}: {', '.join(self.unchanged)}")
        for table, added in sorted(self.rows_added.items()):
            lines.append(f"  backfilled {table:<42}{added:>12,}")
        return lines

    def rows(self) -> Rows:
        """One row per collection named: whether it changed, and the rows backfilled."""
        return Rows(
            ("collection", "changed", "rows_added"),
            [(n, n in self.changed, self.rows_added.get(n, 0)) for n in self.changed]
            + [(n, False, 0) for n in self.unchanged],
        )


def list_collections(engine: Engine, *, schema: str) -> CollectionList:
    """Every collection of the registry, its Drip event(s), whether it is on, its rows."""
    _require_head(engine, schema=schema)
    tables = build_metadata(schema).tables
    with translating(), engine.connect() as conn:
        set_search_path(conn, schema)
        query = text(read_sql("collections/settings.sql"))
        settings = {row.name: row for row in conn.execute(query)}
        states = []
        for c in COLLECTIONS:
            count = select(func.count()).select_from(tables[f"{schema}.{c.name}"])
            setting = settings.get(c.name)
            states.append(
                CollectionState(
                    c.name,
                    c.drip_events,
                    bool(setting and setting.enabled),
                    int(conn.execute(count).scalar_one()),
                    c.on_by_default,
                    setting.changed_at if setting else None,
                )
            )
        return CollectionList(states)


def enable_collections(
    engine: Engine, *, schema: str, names: CollectionNames | None = None
) -> CollectionChange:
    """Turn ``names`` (None: every collection) on and backfill them from ``_raw_events``.

    Safe while loads and the webhook receiver run; waits for the mapping transactions in
    flight to commit.

    Raises:
        ConfigError: the schema is not at the newest revision.
        DatabaseError: the database failed; nothing changed.
    """
    wanted = in_order(BY_NAME) if names is None else names
    return _change(engine, schema=schema, names=wanted, enabled=True)


def disable_collections(engine: Engine, *, schema: str, names: CollectionNames) -> CollectionChange:
    """Turn ``names`` off: new events of their types are kept raw only; their rows stay.

    Raises:
        ConfigError: the schema is not at the newest revision.
        DatabaseError: the database failed; nothing changed.
    """
    return _change(engine, schema=schema, names=names, enabled=False)


def _change(
    engine: Engine, *, schema: str, names: tuple[str, ...], enabled: bool
) -> CollectionChange:
    """Set ``names`` on or off in one transaction; turning on backfills them from raw."""
    _require_head(engine, schema=schema)
    change = CollectionChange(enabled)
    with translating(), engine.connect() as conn:
        batch_session(conn, schema)
        conn.commit()
        with conn.begin():
            changed = _set(conn, names, enabled=enabled, change=change)
            if enabled and changed:
                row = conn.execute(backfill_statement(changed), map_params(changed))
                counts = {k: int(v) for k, v in row.mappings().one().items()}
                counts.pop("events")
                change.rows_added.update({k: v for k, v in counts.items() if v})
    return change


def _set(
    conn: Connection, names: tuple[str, ...], *, enabled: bool, change: CollectionChange
) -> tuple[str, ...]:
    """Lock the setting (waiting for mapping transactions in flight), change it, return
    the collections whose setting changed."""
    conn.execute(text(read_sql("collections/lock_exclusive.sql")))
    done: Iterable[str] = conn.execute(
        text(read_sql("collections/set.sql")), {"names": list(names), "enabled": enabled}
    ).scalars()
    changed = in_order(done)
    change.changed = list(changed)
    change.unchanged = [n for n in names if n not in changed]
    return changed


def _require_head(engine: Engine, *, schema: str) -> None:
    migrate.require_head(
        engine, schema=schema, then="run `drip-loader migrate` first (collections came in 0005)"
    )
