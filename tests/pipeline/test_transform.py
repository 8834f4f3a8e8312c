"""Spec §2, §3 and §5: each Drip email event becomes one row in its table and in tracks."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loader import __version__
from loader.config import Settings
from loader.domain.events import parse_record
from loader.pipeline.transform import ADDED_COUNTS, run_transforms
from loader.warehouse.partitions import ensure_partitions
from tests.casefiles import case, case_bytes, line
from tests.support.warehouse import TABLES, load_lines, one, queue_records, rows, snapshot

OPENED_ID = "drip-c9daf0b892cbfee91c07ed550280e13e04820e09"
CLICKED_ID = "drip-40337f85b1c3e203d8f906b08faa5ba3152f011c"
ALL_CASES = (
    "email_delivered",
    "email_opened",
    "email_link_clicked",
    "email_bounced",
    "email_marked_as_spam",
    "email_unsubscribed_campaign",
    "email_unsubscribed_all",
    "applied_tag",
)


def test_opened_email_row_has_every_column(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    load_lines(settings, tmp_path, [case_bytes("email_opened")])
    row = one(engine, "SELECT * FROM drip.email_opened")
    uuid_ts, received_at = row.pop("uuid_ts"), row.pop("received_at")
    assert row == {
        "id": OPENED_ID,
        "anonymous_id": None,
        "user_id": "u_123",
        "event": "email_opened",
        "event_text": "Email Opened",
        "original_timestamp": datetime(2026, 10, 6, 15, 50, 2, tzinfo=UTC),
        "timestamp": datetime(2026, 10, 6, 15, 50, 2, tzinfo=UTC),
        "sent_at": received_at,
        "context_library_name": "drip-loader",
        "context_library_version": __version__,
        "context_integration_name": "drip",
        "context_integration_version": "1.0.0",
        "context_traits_email": "john@acme.com",
        "context_ip": None,
        "context_user_agent": None,
        "context_drip_account_id": "9999999",
        "context_drip_subscriber_id": "z1togz2hcjrkpp5treip",
        "email_id": "88888",
        "email_subject": "Email Course: Day 1",
        "delivery_id": "99999",
    }
    assert uuid_ts >= received_at
    track = one(engine, "SELECT * FROM drip.tracks")
    for column in (
        "id",
        "anonymous_id",
        "user_id",
        "event",
        "event_text",
        "timestamp",
        "context_traits_email",
    ):
        assert track[column] == (row[column] if column != "event" else "email_opened")


def test_clicked_email_goes_to_link_clicked_with_ip_and_user_agent(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    load_lines(settings, tmp_path, [case_bytes("email_link_clicked")])
    row = one(engine, "SELECT * FROM drip.email_link_clicked")
    assert row["id"] == CLICKED_ID
    assert row["anonymous_id"] == "john@acme.com" and row["user_id"] is None
    assert row["event_text"] == "Email Link Clicked"
    assert row["link_url"] == "https://www.example.com/pricing?utm_source=drip"
    assert row["context_ip"] == "203.0.113.7"
    assert row["context_user_agent"] == "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)"
    assert one(engine, "SELECT context_ip FROM drip.tracks")["context_ip"] == "203.0.113.7"


def test_every_email_event_lands_in_its_table_and_in_tracks(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    report = load_lines(settings, tmp_path, [case_bytes(n) for n in ALL_CASES])
    assert (report.read, report.landed, report.not_email, report.rejected) == (8, 8, 1, 0)
    assert report.rows_added == {
        "tracks": 7,
        "email_delivered": 1,
        "email_opened": 1,
        "email_link_clicked": 1,
        "email_unsubscribed": 2,
        "email_bounced": 1,
        "email_marked_as_spam": 1,
        "outbox": 0,  # forwarding to Segment is off until the first emit
        "subscribers": 4,  # distinct Drip subscriber ids: john, the bounce, the complaint, jane
    }
    assert tuple(report.rows_added) == ADDED_COUNTS  # what the mapping statement reports
    tracks = rows(engine, "SELECT event, event_text FROM drip.tracks ORDER BY timestamp")
    assert [(r["event"], r["event_text"]) for r in tracks] == [
        ("email_delivered", "Email Delivered"),
        ("email_bounced", "Email Bounced"),
        ("email_opened", "Email Opened"),
        ("email_link_clicked", "Email Link Clicked"),
        ("email_marked_as_spam", "Email Marked as Spam"),
        ("email_unsubscribed", "Email Unsubscribed"),
        ("email_unsubscribed", "Email Unsubscribed"),
    ]
    # every collection row has its twin in tracks (joined on id and event)
    for table in TABLES[1:]:
        orphans = rows(
            engine,
            f"SELECT c.id FROM drip.{table} c LEFT JOIN drip.tracks t USING (id, event) WHERE t.id IS NULL",
        )
        assert orphans == []
    # the non-email event is kept raw only
    assert one(engine, "SELECT count(*) AS n FROM drip._raw_events WHERE NOT is_email")["n"] == 1


def test_unsubscribes_carry_their_scope(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    load_lines(
        settings,
        tmp_path,
        [case_bytes("email_unsubscribed_campaign"), case_bytes("email_unsubscribed_all")],
    )
    found = rows(
        engine,
        "SELECT unsubscribe_scope, campaign_id, campaign_name, user_id, anonymous_id, timestamp "
        "FROM drip.email_unsubscribed ORDER BY timestamp",
    )
    assert found == [
        {
            "unsubscribe_scope": "campaign",
            "campaign_id": "4455667",
            "campaign_name": "Onboarding course",
            "user_id": "u_456",
            "anonymous_id": None,
            "timestamp": datetime(2026, 10, 7, 9, 12, 40, tzinfo=UTC),
        },
        {
            "unsubscribe_scope": "all",
            "campaign_id": None,
            "campaign_name": None,
            "user_id": None,
            "anonymous_id": "jane@example.org",
            "timestamp": datetime(2026, 10, 8, 9, 0, tzinfo=UTC),
        },
    ]


def _identity(
    settings: Settings, engine: Engine, tmp_path: Path, subscriber: dict[str, object]
) -> dict[str, object]:
    body = case("email_opened")
    body["data"]["subscriber"] = subscriber
    load_lines(settings, tmp_path, [line(body)])
    return one(engine, "SELECT user_id, anonymous_id, context_traits_email FROM drip.email_opened")


def test_identity_user_id_wins_and_email_stays_in_traits(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    got = _identity(settings, engine, tmp_path, {"id": "s1", "email": "a@x.io", "user_id": " u_9 "})
    assert got == {"user_id": "u_9", "anonymous_id": None, "context_traits_email": "a@x.io"}


def test_identity_blank_user_id_falls_back_to_email(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    got = _identity(settings, engine, tmp_path, {"id": "s1", "email": "a@x.io", "user_id": "   "})
    assert got == {"user_id": None, "anonymous_id": "a@x.io", "context_traits_email": "a@x.io"}


def test_identity_numeric_user_id_is_decimal_text(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    got = _identity(
        settings, engine, tmp_path, {"id": "s1", "email": "a@x.io", "user_id": 12345678901234}
    )
    assert got == {
        "user_id": "12345678901234",
        "anonymous_id": None,
        "context_traits_email": "a@x.io",
    }


def test_identity_without_email_or_user_id_uses_the_drip_id(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    got = _identity(settings, engine, tmp_path, {"id": 77, "user_id": None})
    assert got == {"user_id": None, "anonymous_id": "drip:77", "context_traits_email": None}


def test_pending_path_gives_the_same_tables_as_a_file_load(
    settings: Settings, engine: Engine, tmp_path: Path, pg: dict[str, object]
) -> None:
    from loader.domain.sample import generate_events

    lines = list(generate_events(events=3000, seed=5))
    load_lines(settings, tmp_path, lines)
    expected = snapshot(engine)

    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "TRUNCATE drip._raw_events, drip._rejects, "
                + ", ".join(f"drip.{t}" for t in TABLES)
            )
        )
    records = ((f"mem:{i}", raw, len(raw)) for i, raw in enumerate(lines, 1))
    landed = queue_records(engine, records, load_id="p")
    assert landed.rows_added == {}
    assert one(engine, "SELECT count(*) AS n FROM drip.tracks")["n"] == 0
    result = run_transforms(engine, schema="drip", batch_size=1000)
    assert result.events == landed.landed and result.batches == -(-landed.landed // 1000)
    got = snapshot(engine)
    assert {t: got[t] for t in TABLES} == {t: expected[t] for t in TABLES}


def test_rebuild_from_raw_reproduces_the_tables(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    from loader.domain.sample import generate_events
    from loader.pipeline.rebuild import rebuild_tables

    lines = list(generate_events(events=2000, seed=9))
    load_lines(settings, tmp_path, lines)
    before = snapshot(engine)
    with engine.begin() as conn:  # what a mapping fix repairs
        conn.execute(sa.text("UPDATE drip.email_opened SET email_subject = 'wrong'"))
        conn.execute(sa.text("UPDATE drip.tracks SET event_text = 'wrong'"))

    report = rebuild_tables(engine, schema="drip", batch_size=500)

    # every event of the input, counted from the input itself (retries are one event)
    events = {parse_record(raw).key for raw in lines}
    assert report.events == len(events) < len(lines)
    assert [m.how for m in report.months] == ["emptied"]
    assert snapshot(engine) == before


def test_an_event_whose_landing_commits_late_is_not_skipped(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    """A transform that runs while a landing transaction is open must leave it pending, not lost."""
    first, late = case_bytes("email_opened"), case_bytes("email_link_clicked")
    landed = threading.Event()
    release = threading.Event()

    def slow_lander() -> None:
        def records():  # type: ignore[no-untyped-def]
            yield ("late:1", late, len(late))

        # The chunk is queued only after the generator is exhausted, so hold it open
        # by landing through a connection whose commit we delay.
        ensure_partitions(engine, schema="drip", months=[date(2026, 10, 1)])
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT set_config('search_path', 'drip', false)"))
            conn.execute(
                sa.text(
                    "INSERT INTO _raw_events (_event_key, event, occurred_at, received_at, is_email, _load_id, origin, payload) "
                    "VALUES (:k, 'subscriber.clicked_email', '2026-10-06T15:52:58Z', now(), true, 'late', 'late:1', CAST(:p AS jsonb))"
                ),
                {"k": CLICKED_ID, "p": late.decode()},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO _pending (_event_key, occurred_at) "
                    "VALUES (:k, '2026-10-06T15:52:58Z')"
                ),
                {"k": CLICKED_ID},
            )
            landed.set()
            release.wait(10)
            conn.commit()

    thread = threading.Thread(target=slow_lander)
    thread.start()
    assert landed.wait(10)
    # meanwhile another event lands and the scheduled transform runs
    queue_records(engine, [("now:1", first, len(first))], load_id="n")
    assert run_transforms(engine, schema="drip", batch_size=10).events == 1
    release.set()
    thread.join()
    assert run_transforms(engine, schema="drip", batch_size=10).events == 1
    ids = [r["id"] for r in rows(engine, "SELECT id FROM drip.tracks ORDER BY id")]
    assert ids == sorted([OPENED_ID, CLICKED_ID])
