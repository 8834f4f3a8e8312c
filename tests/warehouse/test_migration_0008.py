"""Revision 0008: an existing warehouse moves to monthly partitions and back, every row kept."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine

from loader.config import Settings
from loader.domain.registry import COLLECTIONS
from loader.domain.sample import MEAN_GAP, generate_events
from loader.errors import DatabaseError
from loader.pipeline.emit import enable_forwarding
from loader.warehouse import migrate
from loader.warehouse.collections import enable_collections
from loader.warehouse.db import set_search_path
from loader.warehouse.partitions import partition_months
from tests.support.warehouse import load_lines, queue_records, rows

EVENT_TABLES = ("_raw_events", "tracks", *(c.name for c in COLLECTIONS))
VIEWS = ("email_performance", "daily_email_activity", "campaign_unsubscribes")


def table_rows(
    engine: Engine, table: str, *, without: tuple[str, ...] = ()
) -> list[tuple[Any, ...]]:
    """Every row of ``drip.<table>`` (every column but ``without``), sorted."""
    with engine.connect() as conn:
        columns = [
            c
            for c in conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'drip' AND table_name = :t ORDER BY ordinal_position"
                ),
                {"t": table},
            ).scalars()
            if c not in without
        ]
        query = sa.select(*map(sa.column, columns)).select_from(sa.table(table, schema="drip"))
        return sorted(tuple(str(v) for v in row) for row in conn.execute(query))


def warehouse(engine: Engine, *, head: bool) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables 0008 changes; at 0007, the queues lack the event time."""
    found = {table: table_rows(engine, table) for table in EVENT_TABLES}
    found["_pending"] = table_rows(engine, "_pending", without=("occurred_at",))
    found["_outbox"] = table_rows(engine, "_outbox", without=("timestamp",))
    if head:
        found["_pending+time"] = table_rows(engine, "_pending")
        found["_outbox+time"] = table_rows(engine, "_outbox")
    return found


def views(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        found: dict[str, Any] = {
            view: sorted(map(str, conn.execute(sa.text(f"SELECT * FROM drip.{view}"))))
            for view in VIEWS
        }
        found["comments"] = conn.execute(
            sa.text(
                "SELECT obj_description(c.oid, 'pg_class'), col_description(c.oid, 1) "
                "FROM pg_class c WHERE c.oid = 'drip.email_performance'::regclass"
            )
        ).one()
    return found


def comments(engine: Engine) -> tuple[str, str]:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT obj_description('drip._raw_events'::regclass, 'pg_class'), "
                "col_description('drip.tracks'::regclass, 1)"
            )
        ).one()


def layout(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        kinds = dict(
            conn.execute(
                sa.text(
                    "SELECT relname, relkind FROM pg_class WHERE relnamespace = 'drip'::regnamespace "
                    "AND relname = ANY (:t)"
                ),
                {"t": list(EVENT_TABLES)},
            ).all()
        )
        keys = dict(
            conn.execute(
                sa.text(
                    "SELECT (SELECT relname FROM pg_class WHERE oid = conrelid), "
                    "pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE contype = 'p' AND conrelid IN ('drip.tracks'::regclass, "
                    "'drip._raw_events'::regclass)"
                )
            ).all()
        )
    return {"kinds": set(kinds.values()), "keys": keys}


def build(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    """A warehouse with rows in five months, in nearly every collection table, a pending
    queue and an outbox with events in every state."""
    enable_collections(engine, schema="drip")
    span = timedelta(days=140) / (3000 * MEAN_GAP)
    start = datetime(2026, 5, 10, tzinfo=UTC)
    lines = list(generate_events(events=3000, seed=61, start=start, spread=span))
    load_lines(settings, tmp_path, lines[:2800])
    with engine.begin() as conn:
        set_search_path(conn, "drip")
        assert enable_forwarding(conn) > 0
        conn.execute(
            sa.text("UPDATE _outbox SET status = 'sent', attempts = 1 WHERE id < 'drip-8'")
        )
        conn.execute(sa.text("UPDATE _outbox SET status = 'failed' WHERE id > 'drip-f'"))
    queue_records(engine, [(f"w:{n}", b, len(b)) for n, b in enumerate(lines[2800:])], load_id="w")
    assert rows(engine, "SELECT count(*) AS n FROM drip._pending")[0]["n"] > 100
    filled = [t for t in EVENT_TABLES if table_rows(engine, t)]
    assert len(filled) > 25, filled  # the rarest Drip events may have no row


def test_the_upgrade_and_downgrade_move_every_row(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    build(settings, engine, tmp_path)
    before, shown = warehouse(engine, head=True), views(engine)
    months = partition_months(engine, schema="drip")
    assert months["tracks"] == [datetime(2026, m, 1).date() for m in range(5, 10)]
    assert layout(engine)["kinds"] == {"p"}
    lines: list[str] = []

    migrate.downgrade(engine, schema="drip", revision="0007", progress=lines.append)

    assert migrate.current_revision(engine, schema="drip") == "0007"
    at_0007 = warehouse(engine, head=False)
    assert at_0007 == {k: v for k, v in before.items() if "+" not in k}
    assert views(engine) == shown
    assert layout(engine) == {
        "kinds": {"r"},
        "keys": {"tracks": "PRIMARY KEY (id)", "_raw_events": "PRIMARY KEY (_event_key)"},
    }
    assert (
        comments(engine)[0] == "Every accepted Drip webhook body, once per event id, as received."
    )
    assert lines[-1].startswith("0008 downgrade: ")
    assert any(line.startswith("0008 tracks: tracks_p202607: ") for line in lines)
    lines.clear()

    migrate.upgrade(engine, schema="drip", progress=lines.append)

    assert warehouse(engine, head=True) == before
    assert views(engine) == shown
    assert partition_months(engine, schema="drip") == months
    assert layout(engine) == {
        "kinds": {"p"},
        "keys": {
            "tracks": 'PRIMARY KEY ("timestamp", id)',
            "_raw_events": "PRIMARY KEY (occurred_at, _event_key)",
        },
    }
    raw_comment, id_comment = comments(engine)
    assert "no event is stored twice, in any partition" in raw_comment
    assert "Unique: the key is (timestamp, id)" in id_comment
    tracks = len(before["tracks"])
    assert f"0008 tracks: {tracks:,} rows in 5 monthly partitions" in "\n".join(lines)
    assert lines[-1].startswith("0008: ")
    with engine.begin() as conn:  # the layout is what the code describes
        command.check(migrate.alembic_config(schema="drip", connection=conn))


def test_views_grants_and_comments_others_added_move_along(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    build(settings, engine, tmp_path)
    migrate.downgrade(engine, schema="drip", revision="0007", progress=lambda _: None)
    role = f"reader_{engine.url.database}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role}"))
        conn.execute(sa.text(f"GRANT SELECT ON drip.tracks, drip.email_opened TO {role}"))
        conn.execute(sa.text("COMMENT ON TABLE drip.tracks IS 'ours, edited'"))
        conn.execute(sa.text("CREATE SCHEMA mart"))
        conn.execute(
            sa.text(
                "CREATE VIEW mart.recent_opens WITH (security_barrier) AS "
                "SELECT o.id, t.event_text FROM drip.email_opened o "
                "JOIN drip.tracks t ON t.id = o.id WHERE o.timestamp >= '2026-08-01'"
            )
        )
        conn.execute(sa.text(f"GRANT SELECT ON mart.recent_opens TO {role}"))
    opens = rows(engine, "SELECT * FROM mart.recent_opens ORDER BY id")
    assert opens
    try:
        migrate.upgrade(engine, schema="drip", progress=lambda _: None)
        assert rows(engine, "SELECT * FROM mart.recent_opens ORDER BY id") == opens
        found = rows(
            engine,
            "SELECT has_table_privilege(:r, 'drip.tracks', 'SELECT') AS tracks, "
            "has_table_privilege(:r, 'mart.recent_opens', 'SELECT') AS view, "
            "obj_description('drip.tracks'::regclass, 'pg_class') AS comment, "
            "(SELECT reloptions FROM pg_class WHERE oid = 'mart.recent_opens'::regclass) AS options, "
            "(SELECT relkind FROM pg_class WHERE oid = 'drip.tracks'::regclass) AS kind",
            r=role,
        )
        assert found == [
            {
                "tracks": True,
                "view": True,
                "comment": "ours, edited",
                "options": ["security_barrier=true"],
                "kind": "p",
            }
        ]
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP OWNED BY {role}"))
            conn.execute(sa.text(f"DROP ROLE {role}"))


def test_an_outbox_row_of_no_event_stops_it_with_what_to_do(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    build(settings, engine, tmp_path)
    migrate.downgrade(engine, schema="drip", revision="0007", progress=lambda _: None)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO drip._outbox (id) VALUES ('drip-made-up')"))
    before = warehouse(engine, head=False)
    with pytest.raises(DatabaseError) as raised:
        migrate.upgrade(engine, schema="drip", progress=lambda _: None)
    assert str(raised.value) == (
        "1 row(s) of drip._outbox name an event in neither _raw_events nor tracks: they can "
        "never be forwarded; delete them (DELETE FROM drip._outbox WHERE id NOT IN (SELECT "
        "_event_key FROM drip._raw_events UNION ALL SELECT id FROM drip.tracks)) and migrate again"
    )
    assert migrate.current_revision(engine, schema="drip") == "0007"
    assert warehouse(engine, head=False) == before


def test_readers_and_writers_wait_for_it(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    build(settings, engine, tmp_path)
    migrate.downgrade(engine, schema="drip", revision="0007", progress=lambda _: None)
    seen: list[str] = []

    def meanwhile(line: str) -> None:
        if seen:
            return

        # from another connection, as a dashboard or a loader would
        def try_it(sql: str) -> None:
            with engine.connect() as conn:
                conn.execute(sa.text("SET lock_timeout = '200ms'"))
                try:
                    conn.execute(sa.text(sql))
                    seen.append(f"ran: {sql}")
                except sa.exc.OperationalError as exc:
                    seen.append(f"waited: {type(exc.orig).__name__}")

        for sql in (
            "SELECT count(*) FROM drip.tracks",
            "INSERT INTO drip._pending (_event_key) VALUES ('x')",
        ):
            worker = threading.Thread(target=try_it, args=(sql,))
            worker.start()
            worker.join()

    migrate.upgrade(engine, schema="drip", progress=meanwhile)
    assert seen == ["waited: LockNotAvailable", "waited: LockNotAvailable"]
