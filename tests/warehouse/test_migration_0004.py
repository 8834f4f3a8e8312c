"""Revision 0004: subscriber snapshots queued, forwarding opt-in, BRIN time indexes.

Up to revision 0007, the last whose event tables are not partitioned by month (0008 drops
the timestamp BRIN indexes, and refuses outbox rows of events the warehouse lacks, as the
made-up ones here).
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from loader.domain.sample import generate_events
from loader.pipeline.land import land_records
from loader.warehouse import migrate


def scalar(engine: Engine, sql: str) -> object:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def time_index_methods(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(
                text(
                    "SELECT am.amname FROM pg_class i JOIN pg_am am ON am.oid = i.relam"
                    " JOIN pg_namespace n ON n.oid = i.relnamespace"
                    " WHERE n.nspname = 'drip' AND i.relkind = 'i'"
                    " AND (i.relname LIKE '%\\_received_at' OR i.relname LIKE '%\\_timestamp')"
                )
            ).scalars()
        )


def land(engine: Engine, events: int) -> None:
    """Land and map ``events`` sample bodies, leaving their subscriber snapshots queued."""
    bodies = list(generate_events(events=events, seed=11))
    records = [(f"s:{n}", b, len(b)) for n, b in enumerate(bodies)]
    land_records(
        engine, records, schema="drip", load_id="l", batch_size=500, max_record_bytes=1 << 20
    )


@pytest.mark.parametrize(("forwarded", "on"), [(False, False), (True, True)])
def test_a_warehouse_that_forwarded_before_keeps_forwarding(
    empty_engine: Engine, forwarded: bool, on: bool
) -> None:
    migrate.upgrade(empty_engine, schema="drip", revision="0003")
    with empty_engine.begin() as conn:
        conn.execute(text("INSERT INTO drip._outbox (id) VALUES ('drip-a')"))
        if forwarded:
            conn.execute(text("INSERT INTO drip._outbox (id, status) VALUES ('drip-b', 'sent')"))

    migrate.upgrade(empty_engine, schema="drip", revision="0007")

    assert scalar(empty_engine, "SELECT EXISTS (SELECT FROM drip._forwarding)") is on


def test_the_downgrade_merges_the_queue_and_fills_the_outbox(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, schema="drip")
    land(empty_engine, 2_000)
    migrate.downgrade(empty_engine, schema="drip", revision="0007")
    assert time_index_methods(empty_engine) == {"brin"}
    subscribers = scalar(
        empty_engine,
        "SELECT count(DISTINCT payload -> 'data' -> 'subscriber' ->> 'id') FROM drip._raw_events",
    )
    assert scalar(empty_engine, "SELECT count(*) FROM drip.subscribers") == 0
    assert scalar(empty_engine, "SELECT count(*) FROM drip._outbox") == 0

    migrate.downgrade(empty_engine, schema="drip", revision="0003")

    # revision 0003's invariants: subscribers up to date, an outbox row per email event
    assert scalar(empty_engine, "SELECT count(*) FROM drip.subscribers") == subscribers
    assert scalar(
        empty_engine,
        "SELECT count(*) FROM drip.tracks t"
        " WHERE NOT EXISTS (SELECT FROM drip._outbox o WHERE o.id = t.id)",
    ) == 0  # fmt: skip
    assert time_index_methods(empty_engine) == {"btree"}
    migrate.upgrade(empty_engine, schema="drip", revision="0007")
    assert time_index_methods(empty_engine) == {"brin"}
    # it had forwarded nothing: forwarding stays off until the first emit
    assert scalar(empty_engine, "SELECT EXISTS (SELECT FROM drip._forwarding)") is False
