"""``import-segment``: Segment's history copied into a warehouse with live data, checked row
by row against rows computed here from the Segment rows (never by the code under test)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loader.config import Settings
from loader.domain.sample import generate_events
from loader.errors import ConfigError, SegmentRowError
from loader.pipeline.emit import enable_forwarding
from loader.pipeline.import_segment import ImportReport, import_segment
from loader.pipeline.rebuild import rebuild_tables as rebuild
from loader.pipeline.run import run_pipeline
from loader.warehouse import migrate
from loader.warehouse.db import make_engine, set_search_path
from loader.warehouse.imports import segment_rows
from tests.casefiles import case, line
from tests.support.postgres import TEMPLATE, fresh_database
from tests.support.segment_schema import (
    EMAIL_TABLES,
    EVENT_TEXT,
    create_segment_schema,
    generate_segment_schema,
)
from tests.support.segment_schema import (
    segment_rows as make_rows,
)
from tests.support.warehouse import rows, snapshot, write_ndjson

SWITCH = datetime(2026, 10, 1, tzinfo=UTC)
"""The sample's events start here: drip-loader's history begins at the switch-over."""
DRIP_EVENTS = {
    "subscriber.received_email": "email_delivered",
    "subscriber.opened_email": "email_opened",
    "subscriber.clicked_email": "email_link_clicked",
    "subscriber.unsubscribed_from_campaign": "email_unsubscribed",
    "subscriber.unsubscribed_all": "email_unsubscribed",
    "subscriber.bounced": "email_bounced",
    "subscriber.complained": "email_marked_as_spam",
}
COMMON = (
    "id",
    "anonymous_id",
    "user_id",
    "event",
    "event_text",
    "original_timestamp",
    "timestamp",
    "received_at",
    "sent_at",
    "context_library_name",
    "context_library_version",
    "context_integration_name",
    "context_integration_version",
    "context_traits_email",
    "context_ip",
    "context_user_agent",
    "context_drip_account_id",
    "context_drip_subscriber_id",
)
PROPERTIES = {
    "email_delivered": ("email_id", "email_subject", "delivery_id"),
    "email_opened": ("email_id", "email_subject", "delivery_id"),
    "email_link_clicked": ("email_id", "email_subject", "delivery_id", "link_url"),
    "email_unsubscribed": ("campaign_id", "campaign_name", "unsubscribe_scope"),
    "email_bounced": ("email_id", "email_subject", "delivery_id"),
    "email_marked_as_spam": ("email_id", "email_subject", "delivery_id"),
    "tracks": (),
}


# The expected warehouse, computed from the Segment rows -----------------------------------


def live_cutoffs(lines: list[bytes]) -> dict[str, datetime]:
    """Per email table, the earliest occurred_at of the sample's events of that type."""
    first: dict[str, datetime] = {}
    for raw in lines:
        body = json.loads(raw)
        table = DRIP_EVENTS.get(body.get("event"))
        if table is None:
            continue
        at = datetime.fromisoformat(body["occurred_at"].replace("Z", "+00:00"))
        first[table] = min(at, first.get(table, at))
    return first


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def expected_row(table: str, r: dict[str, Any]) -> dict[str, Any]:
    """Our row for Segment row ``r`` of ``table``, by the rules of the guide."""
    ts = r["timestamp"]
    received = r.get("received_at") or ts
    event = r.get("event") or table
    out: dict[str, Any] = dict.fromkeys(COMMON)
    out.update(
        id=r["id"],
        anonymous_id=r.get("anonymous_id"),
        user_id=r.get("user_id"),
        event=event,
        event_text=r.get("event_text") or EVENT_TEXT[event],
        original_timestamp=r.get("original_timestamp") or ts,
        timestamp=ts,
        received_at=received,
        sent_at=r.get("sent_at") or received,
        context_library_name=r.get("context_library_name"),
        context_library_version=r.get("context_library_version"),
        context_integration_name=r.get("context_integration_name"),
        context_traits_email=r.get("context_traits_email"),
        context_ip=r.get("context_ip"),
    )
    for name in PROPERTIES[table]:
        out[name] = _text(r.get(name))  # bigint 88003 -> '88003'
    return out


def expected_tables(
    source: dict[str, list[dict[str, Any]]], cutoffs: dict[str, datetime]
) -> dict[str, list[dict[str, Any]]]:
    """Every imported row of every table, sorted by id."""
    out: dict[str, list[dict[str, Any]]] = {}
    for table in EMAIL_TABLES:
        out[table] = [
            expected_row(table, r) for r in source[table] if r["timestamp"] < cutoffs[table]
        ]
    tracks = {
        r["id"]: expected_row("tracks", r)
        for r in source["tracks"]
        if r["event"] in cutoffs and r["timestamp"] < cutoffs[r["event"]]
    }
    for table in EMAIL_TABLES:  # a collection row whose event Segment's tracks lacks
        for r in out[table]:
            tracks.setdefault(r["id"], {c: r[c] for c in COMMON})
    out["tracks"] = list(tracks.values())
    return {t: sorted(v, key=lambda r: r["id"]) for t, v in out.items()}


def imported(engine: Engine, schema: str = "drip") -> dict[str, list[dict[str, Any]]]:
    """The rows of every table that are not drip-loader's own, sorted by id."""
    found = {}
    for t in ("tracks", *EMAIL_TABLES):
        names = ", ".join(f'"{c}"' for c in (*COMMON, *PROPERTIES[t]))
        found[t] = rows(
            engine, f"SELECT {names} FROM {schema}.{t} WHERE id NOT LIKE 'drip-%' ORDER BY id"
        )
    return found


def drip_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """drip-loader's own rows, every column (uuid_ts too): an import must not touch them."""
    return {
        t: [
            tuple(r.values())
            for r in rows(engine, f"SELECT * FROM drip.{t} WHERE id LIKE 'drip-%' ORDER BY id")
        ]
        for t in ("tracks", *EMAIL_TABLES)
    }


def checksums(engine: Engine, schema: str = "website") -> dict[str, tuple[Any, ...]]:
    """Per table of ``schema``: row count and md5 of every row; plus its columns and types."""
    found: dict[str, tuple[Any, ...]] = {}
    with engine.connect() as conn:
        tables = conn.execute(
            sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :s ORDER BY 1"),
            {"s": schema},
        ).scalars()
        for table in list(tables):
            found[table] = tuple(
                conn.execute(
                    sa.text(
                        f"SELECT count(*), md5(string_agg(CAST(t AS text), '|' ORDER BY CAST(t AS text))) "
                        f'FROM "{schema}"."{table}" t'
                    )
                ).one()
            )
        found["(columns)"] = tuple(
            conn.execute(
                sa.text(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = :s ORDER BY 1, 2"
                ),
                {"s": schema},
            ).all()
        )
    return found


# Fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def live(settings: Settings, tmp_path: Path) -> list[bytes]:
    """The warehouse with live data: 1,500 sample events loaded by drip-loader."""
    lines = list(generate_events(events=1_500, seed=5))
    report = run_pipeline(settings, [str(write_ndjson(tmp_path / "live.ndjson", lines))])
    assert report.rejected == 0
    return lines


@pytest.fixture
def source(engine: Engine, live: list[bytes]) -> dict[str, list[dict[str, Any]]]:
    """Segment's schema ``website``: 40 rows per email table from 2024 to the switch-over,
    three after it, some rows missing from tracks, tracks rows of another event."""
    data = make_rows(per_table=40, seed=7, end=SWITCH)
    create_segment_schema(engine, "website", data)
    return data


def run(engine: Engine, **options: Any) -> ImportReport:
    return import_segment(engine, schema="drip", source_schema="website", **options)


# Tests ------------------------------------------------------------------------------------


def test_every_row_before_the_cutoff_lands_as_computed_and_nothing_after(
    engine: Engine, live: list[bytes], source: dict[str, list[dict[str, Any]]]
) -> None:
    cutoffs = live_cutoffs(live)
    before = drip_rows(engine)
    website = checksums(engine)

    report = run(engine, batch_size=7)

    expected = expected_tables(source, cutoffs)
    got = imported(engine)
    for table in ("tracks", *EMAIL_TABLES):
        assert got[table] == expected[table], table
    # some rows were after the cutoff, and none of them came
    after = [r for t in EMAIL_TABLES for r in source[t] if r["timestamp"] >= cutoffs[t]]
    assert len(after) >= 6
    assert drip_rows(engine) == before  # live data untouched
    assert checksums(engine) == website  # the source, byte for byte
    assert {t: c.at for t, c in report.cutoffs.items()} == cutoffs
    assert {c.reason for c in report.cutoffs.values()} == {
        "first event of this type drip-loader received"
    }
    by_table = {t.table: t for t in report.tables}
    for table in EMAIL_TABLES:
        assert by_table[table].added == len(expected[table])
        assert by_table[table].tracks_made == 2  # the two rows Segment's tracks lacked
    assert by_table["tracks"].added + sum(t.tracks_made for t in report.tables) == len(
        expected["tracks"]
    )
    # Segment's columns with no counterpart, with their non-null values before the cutoff
    opened = [r for r in source["email_opened"] if r["timestamp"] < cutoffs["email_opened"]]
    assert dict(by_table["email_opened"].extra) == {
        "context_traits_first_name": sum(
            r["context_traits_first_name"] is not None for r in opened
        ),
        "uuid": len(opened),
        "score": sum(r["score"] is not None for r in opened),
        "is_test": len(opened),
    }
    assert [c for c, _ in by_table["email_delivered"].extra] == [
        "context_traits_first_name",
        "uuid",
        "email_type",
    ]


def test_imported_rows_get_their_write_time_in_uuid_ts(
    engine: Engine, live: list[bytes], source: dict[str, list[dict[str, Any]]]
) -> None:
    started = datetime.now(UTC) - timedelta(seconds=5)
    run(engine)
    times = rows(engine, "SELECT min(uuid_ts) AS low FROM drip.tracks WHERE id NOT LIKE 'drip-%'")
    assert times[0]["low"] >= started  # incremental dbt models keyed on uuid_ts see them


def test_a_second_run_adds_nothing(
    engine: Engine, live: list[bytes], source: dict[str, list[dict[str, Any]]]
) -> None:
    run(engine, batch_size=10)
    first = snapshot(engine)
    ledger = rows(engine, "SELECT * FROM drip._imports ORDER BY table_name")

    again = run(engine, batch_size=10)

    assert again.added == 0 and all(t.to_copy == 0 for t in again.tables)
    assert snapshot(engine) == first
    assert rows(engine, "SELECT * FROM drip._imports ORDER BY table_name") == ledger


def test_a_dry_run_says_what_it_would_copy_and_changes_nothing(
    engine: Engine, live: list[bytes], source: dict[str, list[dict[str, Any]]]
) -> None:
    cutoffs = live_cutoffs(live)
    first = snapshot(engine)
    runs = rows(engine, "SELECT count(*) AS n FROM drip._runs")

    report = run(engine, dry_run=True)

    assert report.dry_run and report.added == 0
    expected = expected_tables(source, cutoffs)
    for t in report.tables:
        if t.table != "tracks":
            assert (t.to_copy, t.source_rows) == (len(expected[t.table]), 43), t
    assert {t: c.at for t, c in report.cutoffs.items()} == cutoffs
    assert snapshot(engine) == first
    assert rows(engine, "SELECT count(*) AS n FROM drip._imports")[0]["n"] == 0
    assert rows(engine, "SELECT count(*) AS n FROM drip._runs") == runs


def test_until_overrides_the_cutoff_a_later_one_extends_an_earlier_one_is_refused(
    engine: Engine, live: list[bytes], source: dict[str, list[dict[str, Any]]]
) -> None:
    early = datetime(2025, 6, 1, tzinfo=UTC)
    run(engine, until=early)
    got = imported(engine)
    for table in EMAIL_TABLES:
        assert got[table] == expected_tables(source, dict.fromkeys(EMAIL_TABLES, early))[table]

    later = datetime(2025, 12, 1, tzinfo=UTC)
    run(engine, until=later)  # goes on from where the first stopped, tracks included
    assert imported(engine) == expected_tables(source, dict.fromkeys(EMAIL_TABLES, later))

    with pytest.raises(ConfigError) as refused:
        run(engine, until=early)
    assert "rows up to" in str(refused.value) and "give a later --until" in str(refused.value)
    # without --until the recorded cutoffs hold, not drip-loader's first events
    again = run(engine)
    assert again.added == 0 and {c.at for c in again.cutoffs.values()} == {later}


def test_subscribers_from_context_traits_email_never_over_a_real_snapshot(
    settings: Settings,
    engine: Engine,
    live: list[bytes],
    source: dict[str, list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    real = {
        r["email"].strip().lower()
        for r in rows(engine, "SELECT email FROM drip.subscribers WHERE email IS NOT NULL")
    }
    real_before = rows(engine, "SELECT * FROM drip.subscribers ORDER BY id")
    cutoffs = live_cutoffs(live)
    run(engine)

    seen: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for table in EMAIL_TABLES:
        for r in source[table]:
            email = (r["context_traits_email"] or "").strip()
            if email and r["timestamp"] < cutoffs[table]:
                seen[email.lower()].append(r)
    expected = []
    for key, events in sorted(seen.items()):
        if key in real:
            continue
        latest = sorted(events, key=lambda r: (r["timestamp"], r["id"]))
        users = [r["user_id"] for r in latest if r["user_id"]]
        expected.append(
            {
                "id": f"email:{key}",
                "email": latest[-1]["context_traits_email"].strip(),
                "user_id": users[-1] if users else None,
                "first_seen_at": latest[0]["timestamp"],
                "last_seen_at": latest[-1]["timestamp"],
            }
        )
    got = rows(
        engine,
        "SELECT id, email, user_id, first_seen_at, last_seen_at FROM drip.subscribers "
        "WHERE id LIKE 'email:%' ORDER BY id",
    )
    assert got == expected
    assert [r["id"] for r in got] == [
        "email:ann@acme.com",
        "email:bob@acme.com",
        "email:jane@example.org",
    ]
    assert (
        rows(engine, "SELECT * FROM drip.subscribers WHERE id NOT LIKE 'email:%' ORDER BY id")
        == real_before
    )

    # a real snapshot with that email arrives: it replaces the row from Segment's history
    body = case("email_opened")
    body["data"]["subscriber"].update(id="drip_ann", email="ann@acme.com")
    body["occurred_at"] = "2026-10-09T10:00:00Z"
    run_pipeline(settings, [str(write_ndjson(tmp_path / "ann.ndjson", [line(body)]))])
    ids = [
        r["id"]
        for r in rows(engine, "SELECT id FROM drip.subscribers WHERE email ILIKE 'ann@acme.com'")
    ]
    assert ids == ["drip_ann"]
    assert run(engine).subscribers_added == 0  # and a rerun does not bring it back


def test_status_counts_the_rows_that_came_from_segment(
    engine: Engine, live: list[bytes], source: dict[str, list[dict[str, Any]]]
) -> None:
    assert segment_rows(engine, schema="drip") is None
    report = run(engine)
    counted = segment_rows(engine, schema="drip")
    assert counted is not None
    expected = expected_tables(source, live_cutoffs(live))
    assert counted.by_table == {t: len(v) for t, v in expected.items()}
    assert counted.events == len(expected["tracks"]) == report.tables[0].added + 12
    assert counted.sources == ("website",) and counted.finished


def test_reports_views_and_attribution_see_imported_rows(
    engine: Engine, live: list[bytes], source: dict[str, list[dict[str, Any]]]
) -> None:
    from loader.analyst import catalog
    from loader.analyst.attribution import run_attribution
    from loader.analyst.report import run_report

    run(engine)
    expected = expected_tables(source, live_cutoffs(live))
    # daily activity of 2024-2026 comes only from Segment's history
    daily: dict[tuple[str, str], int] = defaultdict(int)
    for r in expected["tracks"]:
        if r["timestamp"] < SWITCH:
            daily[(r["timestamp"].date().isoformat(), r["event"])] += 1
    report = run_report(
        engine,
        catalog.view_report("daily"),
        schema="drip",
        window=catalog.parse_range(None, "2026-10-01"),
    )
    got = {(r["day"], r["event"]): int(r["events"]) for r in report.records()}
    assert got == dict(daily)
    # email 88001: opens from Segment's history plus the live ones
    opens = sum(r["email_id"] == "88001" for r in expected["email_opened"])
    live_opens = rows(
        engine,
        "SELECT count(*) AS n FROM drip.email_opened WHERE email_id = '88001' AND id LIKE 'drip-%'",
    )[0]["n"]
    performance = run_report(
        engine, catalog.view_report("email-performance"), schema="drip", window=catalog.Window()
    )
    (row,) = [r for r in performance.records() if r["email_id"] == "88001"]
    assert row["opens"] == opens + live_opens and opens > 0
    # a conversion an hour after an imported click of Bob's is credited to that email
    click = max(
        (
            r
            for r in expected["email_link_clicked"]
            if r["context_traits_email"] == "BOB@acme.com" and r["email_id"]
        ),
        key=lambda r: r["timestamp"],
    )
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE website.order_completed "
                '(id text, context_traits_email text, "timestamp" timestamptz)'
            )
        )
        conn.execute(
            sa.text("INSERT INTO website.order_completed VALUES ('o1', 'bob@acme.com', :at)"),
            {"at": click["timestamp"] + timedelta(hours=1)},
        )
    question = catalog.attribution_question(
        conversions="website.order_completed",
        window="2h",
        touch="click",
        since=click["timestamp"],
    )
    credited = run_attribution(engine, question, schema="drip").records()
    assert [r["email_id"] for r in credited if r["conversions"] == 1] == [click["email_id"]]


def test_imported_rows_survive_rebuild(
    engine: Engine, live: list[bytes], source: dict[str, list[dict[str, Any]]]
) -> None:
    # Imported rows have no raw event: a rebuild must keep them.
    run(engine)
    kept = imported(engine)
    rebuild(engine, schema="drip", batch_size=500)
    assert imported(engine) == kept


def test_the_first_emit_does_not_queue_history_from_segment(
    engine: Engine, live: list[bytes], source: dict[str, list[dict[str, Any]]]
) -> None:
    run(engine)
    with engine.begin() as conn:
        set_search_path(conn, "drip")
        queued = enable_forwarding(conn)
    own = rows(engine, "SELECT count(*) AS n FROM drip.tracks WHERE id LIKE 'drip-%'")[0]["n"]
    assert queued == own
    outbox = rows(engine, "SELECT count(*) AS n FROM drip._outbox WHERE id NOT LIKE 'drip-%'")
    assert outbox[0]["n"] == 0


def test_the_cutoff_counts_drip_loader_s_rows_whose_raw_events_are_gone(
    engine: Engine, live: list[bytes], source: dict[str, list[dict[str, Any]]]
) -> None:
    # `archive` moves whole raw months out; their rows stay, and they are drip-loader's
    with engine.begin() as conn:
        gone = conn.execute(
            sa.text("DELETE FROM drip._raw_events WHERE occurred_at < '2026-10-01 06:00Z'")
        ).rowcount
    assert gone > 100
    report = run(engine, dry_run=True)
    assert {t: c.at for t, c in report.cutoffs.items()} == live_cutoffs(live)


def test_with_no_event_of_a_type_yet_its_cutoff_is_the_switch_over(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    opened = case("email_opened")  # drip-loader has received one open and nothing else
    run_pipeline(settings, [str(write_ndjson(tmp_path / "one.ndjson", [line(opened)]))])
    create_segment_schema(engine, "website", make_rows(per_table=5, seed=1, end=SWITCH))
    report = run(engine, dry_run=True)
    at = datetime(2026, 10, 6, 15, 50, 2, tzinfo=UTC)
    assert report.cutoffs["email_opened"].reason == "first event of this type drip-loader received"
    assert {c.at for c in report.cutoffs.values()} == {at}
    assert report.cutoffs["email_bounced"].reason == (
        "first email event drip-loader received (none of this type yet)"
    )


def test_without_any_drip_loader_event_the_cutoff_must_be_given(engine: Engine) -> None:
    create_segment_schema(engine, "website", make_rows(per_table=5, seed=1, end=SWITCH))
    with pytest.raises(ConfigError) as refused:
        run(engine)
    assert str(refused.value) == (
        "the warehouse has no email event drip-loader received yet, so there is no switch-over "
        "time to cut Segment's history at: start `drip-loader serve` in this schema first and "
        "let it receive events (see the guide, docs/switching-from-segment.md), or give --until"
    )
    assert run(engine, until=SWITCH).added > 0


def _typed_source(engine: Engine, *, bad: str | None) -> dict[str, list[dict[str, Any]]]:
    """A Segment schema whose original_timestamp is text (Segment typed it by its values):
    ISO 8601 lands; ``bad`` (if given) is one row's value that cannot."""
    data = make_rows(per_table=6, seed=3, end=SWITCH, after=0)
    create_segment_schema(engine, "website", data)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "ALTER TABLE website.email_bounced ALTER original_timestamp TYPE varchar(1024) USING to_char(original_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
            )
        )
        if bad is not None:
            conn.execute(
                sa.text(
                    "UPDATE website.email_bounced SET original_timestamp = :bad WHERE id = :id"
                ),
                {"bad": bad, "id": data["email_bounced"][3]["id"]},
            )
    return data


def test_a_text_time_lands_and_one_that_cannot_is_named_with_its_row(
    engine: Engine, live: list[bytes]
) -> None:
    data = _typed_source(engine, bad=None)
    run(engine, until=SWITCH)
    got = rows(
        engine,
        "SELECT id, original_timestamp FROM drip.email_bounced WHERE id NOT LIKE 'drip-%' ORDER BY id",
    )
    assert got == sorted(
        (
            {"id": r["id"], "original_timestamp": r["original_timestamp"] or r["timestamp"]}
            for r in data["email_bounced"]
        ),
        key=lambda r: r["id"],
    )
    assert any(r["original_timestamp"] is not None for r in data["email_bounced"])


def test_a_value_that_cannot_land_stops_the_run_before_anything_is_copied(
    engine: Engine, live: list[bytes]
) -> None:
    _typed_source(engine, bad="next tuesday")
    bad_id = rows(
        engine, "SELECT id FROM website.email_bounced WHERE original_timestamp = 'next tuesday'"
    )[0]["id"]
    with pytest.raises(SegmentRowError) as refused:
        run(engine, until=SWITCH)
    assert str(refused.value) == (
        f"email_bounced row \"{bad_id}\": column original_timestamp holds 'next tuesday' "
        "(character varying(1024)), which is no time drip-loader can store (timestamptz; text "
        "must be ISO 8601): fix or delete that row in website.email_bounced (import-segment "
        "never changes it), then run import-segment again; nothing was copied by this run"
    )
    assert (refused.value.table, refused.value.row_id, refused.value.column) == (
        "email_bounced",
        bad_id,
        "original_timestamp",
    )
    assert (
        rows(engine, "SELECT count(*) AS n FROM drip.tracks WHERE id NOT LIKE 'drip-%'")[0]["n"]
        == 0
    )


def test_a_value_spoiled_during_the_run_stops_its_batch_and_keeps_the_ones_before(
    engine: Engine, live: list[bytes]
) -> None:
    _typed_source(engine, bad=None)
    last = rows(engine, 'SELECT id FROM website.email_bounced ORDER BY "timestamp" DESC LIMIT 1')[
        0
    ]["id"]

    class Spoiler:
        """Spoils the last row of email_bounced once the survey has passed it."""

        def start(self, description: str, total: int | None) -> None:
            if description == "Copying email_bounced":
                with engine.begin() as conn:
                    conn.execute(
                        sa.text(
                            "UPDATE website.email_bounced SET original_timestamp = 'soon' WHERE id = :id"
                        ),
                        {"id": last},
                    )

        def advance(self, amount: int) -> None:
            pass

    with pytest.raises(SegmentRowError) as refused:
        run(engine, until=SWITCH, batch_size=2, progress=Spoiler())
    assert refused.value.row_id == last and refused.value.column == "original_timestamp"
    assert str(refused.value).endswith("the batches committed before are kept")
    copied = rows(engine, "SELECT count(*) AS n FROM drip.email_bounced WHERE id NOT LIKE 'drip-%'")
    assert copied[0]["n"] == 4  # two batches of two before the spoiled one


def test_an_id_in_drip_loader_s_format_is_refused(engine: Engine, live: list[bytes]) -> None:
    data = make_rows(per_table=4, seed=2, end=SWITCH)
    data["email_opened"][1]["id"] = "drip-" + "0" * 40
    create_segment_schema(engine, "website", data)
    with pytest.raises(SegmentRowError) as refused:
        run(engine)
    assert str(refused.value) == (
        f'email_opened row "drip-{"0" * 40}" has an id in drip-loader\'s own format (drip-...), '
        "which Segment never makes: this schema holds rows drip-loader wrote, not Segment's "
        "history; check --from-schema (nothing was copied by this run)"
    )


def test_a_schema_that_is_not_segment_s_is_refused(engine: Engine, live: list[bytes]) -> None:
    with pytest.raises(ConfigError) as missing:
        run(engine)
    assert str(missing.value).startswith('schema "website" does not exist in this database')
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA website; CREATE TABLE website.orders (id text)"))
    with pytest.raises(ConfigError) as other:
        run(engine)
    assert str(other.value) == (
        'schema "website" has none of the tables of Segment\'s Drip source (tracks, '
        "email_delivered, email_opened, email_link_clicked, email_unsubscribed, email_bounced, "
        "email_marked_as_spam): check --from-schema"
    )
    with pytest.raises(ConfigError) as same:
        import_segment(engine, schema="drip", source_schema="drip")
    assert str(same.value).startswith('--from-schema is the warehouse schema "drip" itself')


def test_migrate_refuses_a_segment_made_schema_and_changes_nothing(engine: Engine) -> None:
    create_segment_schema(engine, "website", make_rows(per_table=3, seed=1, end=SWITCH))
    before = checksums(engine)
    with pytest.raises(ConfigError) as refused:
        migrate.upgrade(engine, schema="website")
    assert str(refused.value) == (
        'schema "website" holds tables drip-loader did not make (email_bounced, '
        "email_delivered, email_link_clicked, ...), perhaps Segment's Drip source: use a new "
        "schema (--schema drip) and copy the history with drip-loader import-segment "
        "--from-schema website"
    )
    assert checksums(engine) == before
    assert migrate.current_revision(engine, schema="website") is None


def test_migrate_refuses_other_foreign_tables_with_our_names(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA crm; CREATE TABLE crm.subscribers (id int)"))
    with pytest.raises(ConfigError) as refused:
        migrate.upgrade(engine, schema="crm")
    assert str(refused.value) == (
        'schema "crm" holds tables drip-loader did not make (subscribers): use a new schema '
        "(--schema drip), or move those tables out of crm"
    )
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA elsewhere; CREATE TABLE elsewhere.tracks (id text)"))
    with pytest.raises(ConfigError) as drip:
        migrate.upgrade(engine, schema="elsewhere")
    assert "perhaps Segment's Drip source" in str(drip.value)


# Killed in the middle ---------------------------------------------------------------------


def _start(url: str) -> subprocess.Popen[str]:
    """``drip-loader import-segment`` in a child process (the test kills it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "loader", "import-segment", "--from-schema", "website"]
        + ["--batch-size", "500"],
        env={**os.environ, "DRIP_LOADER_DATABASE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _warehouse_with_history(url: str, tmp_path: Path) -> Engine:
    tmp_path.mkdir()
    settings = Settings(database_url=url, home=tmp_path / "home")
    run_pipeline(
        settings,
        [str(write_ndjson(tmp_path / "live.ndjson", generate_events(events=1_000, seed=9)))],
    )
    engine = make_engine(url)
    generate_segment_schema(
        engine,
        "website",
        per_table=6_000,
        start=datetime(2023, 1, 1, tzinfo=UTC),
        end=SWITCH + timedelta(days=2),
    )
    return engine


def _everything(engine: Engine) -> dict[str, Any]:
    return {
        **snapshot(engine),
        "subscribers": rows(engine, "SELECT * FROM drip.subscribers ORDER BY id"),
        "_imports": rows(
            engine,
            "SELECT source_schema, table_name, cutoff, cutoff_reason, last_timestamp, last_id, "
            "rows_read, rows_added, finished_at IS NOT NULL AS finished FROM drip._imports ORDER BY 2",
        ),
    }


def test_a_killed_run_resumes_and_ends_like_one_clean_run(
    pg: dict[str, object], tmp_path: Path
) -> None:
    url = fresh_database(str(pg["url"]), "import_killed", template=TEMPLATE)
    engine = _warehouse_with_history(url, tmp_path / "a")
    proc = _start(url)
    deadline = time.monotonic() + 120
    while True:  # kill it once it has committed batches of a collection after tracks
        copied = rows(
            engine,
            "SELECT coalesce(sum(rows_read), 0) AS n FROM drip._imports WHERE table_name <> 'tracks'",
        )[0]["n"]
        if copied >= 2_000:
            break
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert (
        rows(engine, "SELECT count(*) AS n FROM drip._imports WHERE finished_at IS NULL")[0]["n"]
        > 0
    )

    rerun = _start(url)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err

    clean_url = fresh_database(str(pg["url"]), "import_clean", template=TEMPLATE)
    clean = _warehouse_with_history(clean_url, tmp_path / "b")
    once = _start(clean_url)
    _, err = once.communicate(timeout=300)
    assert once.returncode == 0, err
    try:
        got, expected = _everything(engine), _everything(clean)
        assert got == expected
        assert len(got["tracks"]) > 30_000
    finally:
        engine.dispose()
        clean.dispose()


def test_a_second_import_into_the_same_schema_waits_its_turn(
    engine: Engine, live: list[bytes], source: dict[str, list[dict[str, Any]]]
) -> None:
    with engine.connect() as other:
        held = other.execute(
            sa.text("SELECT pg_try_advisory_lock(hashtext('drip-loader:import-segment:drip'))")
        ).scalar_one()
        assert held
        with pytest.raises(ConfigError) as refused:
            run(engine)
        assert str(refused.value) == (
            'another import-segment is running on schema "drip": wait for it to end (or stop '
            "it; a rerun resumes where it stopped)"
        )
        other.execute(
            sa.text("SELECT pg_advisory_unlock(hashtext('drip-loader:import-segment:drip'))")
        )
    assert run(engine).added > 0


def test_load_goes_on_beside_an_import_and_both_end_complete(
    settings: Settings, db_url: str, engine: Engine, tmp_path: Path
) -> None:
    run_pipeline(
        settings,
        [str(write_ndjson(tmp_path / "live.ndjson", generate_events(events=500, seed=1)))],
    )
    generate_segment_schema(
        engine, "website", per_table=6_000, start=datetime(2023, 1, 1, tzinfo=UTC), end=SWITCH
    )
    importing = _start(db_url)
    deadline = time.monotonic() + 120
    while not rows(engine, "SELECT sum(rows_read) AS n FROM drip._imports")[0]["n"]:
        assert importing.poll() is None, importing.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)

    # the import is copying: a load runs meanwhile, to its end
    later = write_ndjson(tmp_path / "later.ndjson", generate_events(events=3_000, seed=2))
    loaded = run_pipeline(settings, [str(later)])

    _, err = importing.communicate(timeout=300)
    assert importing.returncode == 0, err
    assert loaded.landed > 0
    counted = segment_rows(engine, schema="drip")
    assert counted is not None and counted.finished
    copied = rows(engine, "SELECT count(*) AS n FROM drip.tracks WHERE id NOT LIKE 'drip-%'")[0][
        "n"
    ]
    assert copied == counted.events == 36_000  # every Segment row is before the cutoff
    own = rows(engine, "SELECT count(*) AS n FROM drip.tracks WHERE id LIKE 'drip-%'")[0]["n"]
    raw = rows(engine, "SELECT count(*) AS n FROM drip._raw_events WHERE is_email")[0]["n"]
    assert own == raw  # every email event drip-loader received is mapped, none lost


def test_a_table_segment_never_wrote_is_reported_and_the_import_still_finishes(
    engine: Engine, live: list[bytes]
) -> None:
    create_segment_schema(engine, "website", make_rows(per_table=4, seed=5, end=SWITCH))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE website.email_marked_as_spam"))

    report = run(engine)

    spam = next(t for t in report.tables if t.table == "email_marked_as_spam")
    assert (spam.in_source, spam.read, spam.added) == (False, 0, 0)
    (line,) = [x for x in report.lines() if x.startswith("  email_marked_as_spam ")][1:]
    assert line.split() == ["email_marked_as_spam", "(none)", "0", "0", "0", "0", "0"]
    counted = segment_rows(engine, schema="drip")
    assert counted is not None and counted.finished
