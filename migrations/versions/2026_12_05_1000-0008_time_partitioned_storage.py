"""Time-ordered storage: ``_raw_events``, ``tracks`` and every collection table partitioned
by month of the event's own time, with primary keys that lead with it.

- ``_raw_events`` is partitioned by ``occurred_at``, keyed by ``(occurred_at, _event_key)``;
  ``tracks`` and the 28 collection tables by ``timestamp``, keyed by ``(timestamp, id)``.
  The partition of table ``T`` for October 2026 is ``T_p202610``, bounds
  ``['2026-10-01 00:00+00', '2026-11-01 00:00+00')`` (months in UTC).  The event id hashes
  the event's time (spec §4), so the new keys are unique exactly when the ids are.
- The ``timestamp`` BRIN index of the event tables goes: the primary key serves time
  ranges now; the ``received_at`` BRIN index stays.
- ``_pending`` gains ``occurred_at`` and ``_outbox`` gains ``timestamp`` (the event's time):
  the transform and the outbox claim find each event in its month's partition.
- The ``id`` comments (and that of ``_raw_events``) say what is unique.

Rows move in batches of heap blocks (a line on stderr per batch, or to the ``progress``
callable in the alembic config's attributes), in the migration's one transaction, which
locks every table it changes (ACCESS EXCLUSIVE) before it reads a row: loaders, ``serve``
and readers wait for its commit.  Taking the locks any later would mean upgrading a lock
while a loader holds a weaker one and waits for ours: a deadlock that Postgres would end
by failing the migration at its very end.
Every view that reads a moved table (ours and anyone's) is re-pointed at the new table with
``CREATE OR REPLACE VIEW`` from its own definition, so views keep their comments and
grants; table comments and grants move with the rows.  The downgrade moves the rows back,
month by month, to the layout of revision 0007.

Frozen: the tables and comments are this revision's own copies; the new tables are made
``LIKE`` the old ones, so they have exactly the columns the warehouse had.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from loader.errors import DatabaseError

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLLECTIONS = (
    "email_delivered",
    "email_opened",
    "email_link_clicked",
    "email_unsubscribed",
    "email_bounced",
    "email_marked_as_spam",
    "subscriber_created",
    "subscriber_deleted",
    "subscriber_subscribed_to_email_marketing",
    "subscriber_reactivated",
    "subscriber_became_non_prospect",
    "subscriber_marked_as_deliverable",
    "subscriber_marked_as_undeliverable",
    "subscriber_subscribed_to_campaign",
    "subscriber_removed_from_campaign",
    "subscriber_completed_campaign",
    "subscriber_applied_tag",
    "subscriber_removed_tag",
    "subscriber_updated_custom_field",
    "subscriber_updated_alias",
    "subscriber_updated_email_address",
    "subscriber_updated_lifetime_value",
    "subscriber_updated_time_zone",
    "subscriber_clicked_trigger_link",
    "subscriber_visited_page",
    "subscriber_became_lead",
    "subscriber_updated_lead_score",
    "subscriber_performed_custom_event",
)
_TABLES: dict[str, tuple[str, str]] = {
    "_raw_events": ("occurred_at", "_event_key"),
    "tracks": ("timestamp", "id"),
    **dict.fromkeys(_COLLECTIONS, ("timestamp", "id")),
}
"""Each moved table: (the column it is partitioned by, its event id column)."""
_QUEUES = ("_pending", "_outbox")

_ID_COMMENT = {
    "0007": "Event id: drip- and 40 hex characters of a sha256 over the event's key fields "
    "(Segment's messageId); the same in the collection table and in tracks.",
    "0008": "Event id: drip- and 40 hex characters of a sha256 over the event's key fields, "
    "its timestamp among them (Segment's messageId); the same in the collection table and in "
    "tracks. Unique: the key is (timestamp, id) and the id hashes the timestamp, so an id is "
    "stored once (an id not computed by drip-loader is unique together with its timestamp).",
}
_RAW_COMMENT = {
    "0007": "Every accepted Drip webhook body, once per event id, as received.",
    "0008": "Every accepted Drip webhook body, once per event id, as received. Partitioned by "
    "month of occurred_at (UTC) and keyed by (occurred_at, _event_key); _event_key, the event "
    "id (tracks.id), hashes occurred_at with the event's other key fields, so one key has one "
    "occurred_at and no event is stored twice, in any partition.",
}

BATCH_BLOCKS = 8192
"""Heap blocks (8 kB each: 64 MB) moved per statement."""

_INCLUDING = (
    "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION "
    "INCLUDING COMMENTS"
)
_DEPENDENT_VIEWS = """
SELECT DISTINCT v.oid, n.nspname, v.relname, v.relkind, v.reloptions
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid
JOIN pg_catalog.pg_class v ON v.oid = w.ev_class
JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace
WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass
  AND d.refclassid = 'pg_catalog.pg_class'::regclass
  AND d.refobjid = ANY (CAST(:oids AS oid[]))
  AND v.oid <> ALL (CAST(:oids AS oid[]))
ORDER BY n.nspname, v.relname
"""
_GRANTS = """
SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END,
       a.privilege_type, a.is_grantable
FROM pg_catalog.pg_class c, LATERAL pg_catalog.aclexplode(c.relacl) a
WHERE c.oid = CAST(:oid AS oid) AND a.grantee <> c.relowner
"""
_PARTITIONS = """
SELECT c.relname
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = CAST(:oid AS oid)
ORDER BY pg_catalog.pg_get_expr(c.relpartbound, c.oid)
"""


def _schema() -> str:
    return str(op.get_context().version_table_schema)


def _q(name: str) -> str:
    return str(op.get_bind().dialect.identifier_preparer.quote(name))


def _t(name: str) -> str:
    return f"{_q(_schema())}.{_q(name)}"


def _literal(value: str) -> str:
    return str(
        sa.literal(value).compile(
            dialect=op.get_bind().dialect, compile_kwargs={"literal_binds": True}
        )
    )


def _run(sql: str, **params: Any) -> Any:
    # DDL text may hold ':' (timestamps): only the named binds are binds
    return op.get_bind().execute(sa.text(sql.replace(":", "\\:") if not params else sql), params)


def _progress() -> Callable[[str], None]:
    config = op.get_context().config
    say = config.attributes.get("progress") if config is not None else None
    if callable(say):
        return say  # type: ignore[no-any-return]
    return lambda line: print(line, file=sys.stderr, flush=True)  # noqa: T201


def _oid(name: str) -> int:
    return int(_run("SELECT CAST(CAST(:name AS regclass) AS oid)", name=_t(name)).scalar_one())


def _lock(names: Iterable[str], mode: str) -> None:
    _run(f"LOCK TABLE {', '.join(_t(n) for n in names)} IN {mode} MODE")


def _month_literals(year: int, month: int) -> tuple[str, str]:
    following = (year + 1, 1) if month == 12 else (year, month + 1)
    return (
        f"'{year:04d}-{month:02d}-01 00:00:00+00'",
        f"'{following[0]:04d}-{following[1]:02d}-01 00:00:00+00'",
    )


def _blocks(name: str) -> int:
    return int(
        _run(
            "SELECT pg_catalog.pg_relation_size(CAST(:name AS regclass)) "
            "/ CAST(current_setting('block_size') AS bigint)",
            name=_t(name),
        ).scalar_one()
    )


def _partition(table: str, new: str, year: int, month: int) -> None:
    """The partition of ``new`` for a month, named as ``table``'s will be."""
    start, end = _month_literals(year, month)
    _run(
        f"CREATE TABLE {_t(f'{table}_p{year:04d}{month:02d}')} PARTITION OF {_t(new)} "
        f"FOR VALUES FROM ({start}) TO ({end})"
    )


def _move_into_partitions(
    table: str, new: str, column: str, say: Callable[[str], None]
) -> tuple[int, set[tuple[int, int]]]:
    """Copy ``table`` into the partitioned ``new`` batch by batch of heap blocks, creating
    each month's partition (under its final name) the first time a batch has its rows;
    return the rows moved and the months (year, month) they fell in."""
    started, rows = time.monotonic(), 0
    months: set[tuple[int, int]] = set()
    total = _blocks(table)
    for low in range(0, total, BATCH_BLOCKS):
        where = f"ctid >= '({low},0)'::tid AND ctid < '({low + BATCH_BLOCKS},0)'::tid"
        found = _run(
            f"SELECT DISTINCT CAST(extract(year FROM {_q(column)} AT TIME ZONE 'UTC') AS int), "
            f"CAST(extract(month FROM {_q(column)} AT TIME ZONE 'UTC') AS int) "
            f"FROM {_t(table)} WHERE {where}"
        ).all()
        for year, month in sorted({(int(y), int(m)) for y, m in found} - months):
            _partition(table, new, year, month)
            months.add((year, month))
        rows += _run(f"INSERT INTO {_t(new)} SELECT * FROM {_t(table)} WHERE {where}").rowcount
        if total > BATCH_BLOCKS:
            done = min(low + BATCH_BLOCKS, total)
            say(f"0008 {table}: {done:,} of {total:,} blocks, {rows:,} rows moved")
    if rows:
        say(
            f"0008 {table}: {rows:,} rows in {len(months)} monthly partitions "
            f"({time.monotonic() - started:.1f} s)"
        )
    return rows, months


def _move_out_of_partitions(table: str, old: str, say: Callable[[str], None]) -> int:
    """Copy the partitioned ``table`` into the plain ``old``, a month at a time; return the
    rows moved."""
    started, rows = time.monotonic(), 0
    partitions = _run(_PARTITIONS, oid=_oid(table)).scalars().all()
    for partition in partitions:
        moved = _run(f"INSERT INTO {_t(old)} SELECT * FROM {_t(partition)}").rowcount
        rows += moved
        if moved and len(partitions) > 1:
            say(f"0008 {table}: {partition}: {moved:,} rows moved back")
    if rows:
        say(f"0008 {table}: {rows:,} rows moved back ({time.monotonic() - started:.1f} s)")
    return rows


def _views_on(tables: Iterable[str]) -> list[tuple[str, str, str, list[str] | None]]:
    """Every view that reads ``tables``: (schema, name, definition, options).

    Definitions are read with the search path on the warehouse schema, so they name its
    tables bare and bind to whatever carries those names when they are replaced."""
    rows = _run(_DEPENDENT_VIEWS, oids=[_oid(t) for t in tables]).all()
    frozen = [r for r in rows if r.relkind != "v"]
    if frozen:
        names = ", ".join(f"{r.nspname}.{r.relname}" for r in frozen)
        raise DatabaseError(
            f"materialized view(s) {names} read the event tables this revision rebuilds: "
            "drop them, migrate, then create them again"
        )
    _search_path(_schema())
    views = [
        (
            r.nspname,
            r.relname,
            str(
                _run("SELECT pg_catalog.pg_get_viewdef(CAST(:oid AS oid))", oid=r.oid).scalar_one()
            ),
            r.reloptions,
        )
        for r in rows
    ]
    return views


def _replace_views(views: list[tuple[str, str, str, list[str] | None]]) -> None:
    # still on the warehouse schema's search path (_views_on): bare names are its tables
    for schema, name, definition, options in views:
        with_options = f" WITH ({', '.join(options)})" if options else ""
        _run(
            f"CREATE OR REPLACE VIEW {_q(schema)}.{_q(name)}{with_options} AS "
            f"{definition.rstrip().rstrip(';')}"
        )
    _search_path(None)


def _search_path(schema: str | None) -> None:
    """Set the search path to ``schema`` for this transaction, or back to what it was."""
    if schema is not None:
        _run(
            "SELECT set_config('drip_loader.saved_search_path', current_setting('search_path'), "
            "true), set_config('search_path', :schema, true)",
            schema=schema,
        )
    else:
        _run(
            "SELECT set_config('search_path', current_setting('drip_loader.saved_search_path'), "
            "true)"
        )


def _carry_over(source: str, target: str) -> None:
    """Give ``target`` the table comment and the grants of ``source``."""
    comment = _run(
        "SELECT pg_catalog.obj_description(CAST(:oid AS oid), 'pg_class')", oid=_oid(source)
    ).scalar()
    if comment is not None:
        _run(f"COMMENT ON TABLE {_t(target)} IS {_literal(comment)}")
    for grantee, privilege, grantable in _run(_GRANTS, oid=_oid(source)).all():
        option = " WITH GRANT OPTION" if grantable else ""
        _run(f"GRANT {privilege} ON {_t(target)} TO {grantee}{option}")


def _swap(built: str, suffix_old: str, say: Callable[[str], None]) -> None:
    """Put the tables built under ``<table>__<built>`` in place of the tables, re-point the
    views, and drop the old tables (renamed ``<table>__<suffix_old>`` on the way)."""
    views = _views_on(_TABLES)
    for table in _TABLES:
        _run(f"ALTER TABLE {_t(table)} RENAME TO {_q(f'{table}__{suffix_old}')}")
        _run(f"ALTER TABLE {_t(f'{table}__{built}')} RENAME TO {_q(table)}")
    _replace_views(views)
    for table in _TABLES:
        _carry_over(f"{table}__{suffix_old}", table)
        _run(f"DROP TABLE {_t(f'{table}__{suffix_old}')}")
        _run(
            f"ALTER TABLE {_t(table)} RENAME CONSTRAINT {_q(f'{table}__{built}_pkey')} TO {_q(f'{table}_pkey')}"
        )


def _comments(revision: str) -> None:
    _run(f"COMMENT ON TABLE {_t('_raw_events')} IS {_literal(_RAW_COMMENT[revision])}")
    for table in _TABLES:
        if table != "_raw_events":
            _run(f"COMMENT ON COLUMN {_t(table)}.{_q('id')} IS {_literal(_ID_COMMENT[revision])}")


def _require_none(count_sql: str, message: str) -> None:
    left = int(_run(count_sql).scalar_one())
    if left:
        raise DatabaseError(message.format(left=left, schema=_schema()))


def _queue_times() -> None:
    """The event time of every queued event, from its landed row (the old key's index)."""
    raw, pending, outbox = _t("_raw_events"), _t("_pending"), _t("_outbox")
    _run(f"ALTER TABLE {pending} ADD COLUMN occurred_at timestamptz")
    _run(
        f"UPDATE {pending} p SET occurred_at = r.occurred_at "
        f"FROM {raw} r WHERE r._event_key = p._event_key"
    )
    _require_none(
        f"SELECT count(*) FROM {pending} WHERE occurred_at IS NULL",
        "{left} row(s) of {schema}._pending name no landed event: nothing can transform them; "
        "delete them (DELETE FROM {schema}._pending WHERE _event_key NOT IN "
        "(SELECT _event_key FROM {schema}._raw_events)) and migrate again",
    )
    _run(f"ALTER TABLE {pending} ALTER COLUMN occurred_at SET NOT NULL")
    _run(f'ALTER TABLE {outbox} ADD COLUMN "timestamp" timestamptz')
    _run(
        f'UPDATE {outbox} o SET "timestamp" = r.occurred_at FROM {raw} r WHERE r._event_key = o.id'
    )
    _run(
        f'UPDATE {outbox} o SET "timestamp" = t."timestamp" FROM {_t("tracks")} t '
        f'WHERE o."timestamp" IS NULL AND t.id = o.id'
    )
    _require_none(
        f'SELECT count(*) FROM {outbox} WHERE "timestamp" IS NULL',
        "{left} row(s) of {schema}._outbox name an event in neither _raw_events nor tracks: "
        "they can never be forwarded; delete them (DELETE FROM {schema}._outbox WHERE id NOT IN "
        "(SELECT _event_key FROM {schema}._raw_events UNION ALL SELECT id FROM {schema}.tracks)) "
        "and migrate again",
    )
    _run(f'ALTER TABLE {outbox} ALTER COLUMN "timestamp" SET NOT NULL')


def upgrade() -> None:
    if op.get_context().as_sql:
        raise RuntimeError("revision 0008 moves rows by what they hold: run it online, not --sql")
    say = _progress()
    started = time.monotonic()
    # Everyone else waits from here to the commit (see the module's docstring).
    _lock((*_TABLES, *_QUEUES), "ACCESS EXCLUSIVE")
    _queue_times()
    rows, months = 0, {}
    for table, (column, _) in _TABLES.items():
        new = f"{table}__0008"
        _run(
            f"CREATE TABLE {_t(new)} (LIKE {_t(table)} {_INCLUDING}) PARTITION BY RANGE ({_q(column)})"
        )
        moved, months[table] = _move_into_partitions(table, new, column, say)
        rows += moved
    # A month has its partition in every table or in none (as loader.warehouse.partitions
    # makes them): a collection turned on later, or a rebuild, writes into any month raw has.
    every = set().union(*months.values())
    for table, (column, key) in _TABLES.items():
        new = f"{table}__0008"
        for year, month in sorted(every - months[table]):
            _partition(table, new, year, month)
        # indexes after the rows: one sorted build per partition
        _run(
            f"ALTER TABLE {_t(new)} ADD CONSTRAINT {_q(f'{new}_pkey')} PRIMARY KEY ({_q(column)}, {_q(key)})"
        )
        if table != "_raw_events":
            _run(
                f"CREATE INDEX {_q(f'ix_{table}_received_at__0008')} ON {_t(new)} USING brin (received_at)"
            )
    _swap("0008", "0007", say)
    for table in _TABLES:
        if table != "_raw_events":
            _run(
                f"ALTER INDEX {_t(f'ix_{table}_received_at__0008')} RENAME TO {_q(f'ix_{table}_received_at')}"
            )
    _comments("0008")
    for table in _TABLES:
        # autovacuum analyzes partitions but never their parent, which plans joins
        _run(f"ANALYZE {_t(table)}")
    say(
        f"0008: {rows:,} rows of {len(_TABLES)} tables moved into monthly partitions "
        f"in {time.monotonic() - started:.1f} s"
    )


def downgrade() -> None:
    say = _progress()
    started = time.monotonic()
    _lock((*_TABLES, *_QUEUES), "ACCESS EXCLUSIVE")
    rows = 0
    for table, (_, key) in _TABLES.items():
        old = f"{table}__0007"
        _run(f"CREATE TABLE {_t(old)} (LIKE {_t(table)} {_INCLUDING})")
        rows += _move_out_of_partitions(table, old, say)
        _run(f"ALTER TABLE {_t(old)} ADD CONSTRAINT {_q(f'{old}_pkey')} PRIMARY KEY ({_q(key)})")
        if table != "_raw_events":
            for column in ("received_at", "timestamp"):
                _run(
                    f"CREATE INDEX {_q(f'ix_{table}_{column}__0007')} ON {_t(old)} "
                    f"USING brin ({_q(column)})"
                )
    _swap("0007", "0008", say)
    for table in _TABLES:
        if table != "_raw_events":
            for column in ("received_at", "timestamp"):
                _run(
                    f"ALTER INDEX {_t(f'ix_{table}_{column}__0007')} "
                    f"RENAME TO {_q(f'ix_{table}_{column}')}"
                )
    _comments("0007")
    _run(f'ALTER TABLE {_t("_outbox")} DROP COLUMN "timestamp"')
    _run(f"ALTER TABLE {_t('_pending')} DROP COLUMN occurred_at")
    for table in _TABLES:
        _run(f"ANALYZE {_t(table)}")
    say(
        f"0008 downgrade: {rows:,} rows of {len(_TABLES)} tables moved out of monthly "
        f"partitions in {time.monotonic() - started:.1f} s"
    )
