"""The analyst layer: the views and the subscribers dimension, on a hand-computed dataset.

Every expected figure below is worked out by hand from ``tests/analyst_cases.py`` (the
E-nn labels); the comments say how.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from loader.config import Settings
from loader.pipeline.rebuild import rebuild_tables
from loader.pipeline.run import RunReport, run_pipeline
from loader.pipeline.transform import run_transforms
from tests.analyst_cases import BATCH_1, BATCH_2, at, webhook, write_ndjson
from tests.support.warehouse import queue_records

D = Decimal


def load(settings: Settings, tmp_path: Path, name: str, bodies: list[bytes]) -> RunReport:
    return run_pipeline(settings, [str(write_ndjson(tmp_path / name, bodies))])


def rows(engine: Engine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


PERFORMANCE = "SELECT * FROM drip.email_performance ORDER BY email_id"
DAILY = "SELECT * FROM drip.daily_email_activity ORDER BY day, event"
UNSUBSCRIBES = "SELECT * FROM drip.campaign_unsubscribes ORDER BY campaign_id NULLS LAST"
SUBSCRIBERS = "SELECT * FROM drip.subscribers ORDER BY id"

# email_id, email_subject, delivered, opens, unique_opens, clicks, unique_clicks, bounces,
# spam_reports, open_rate, click_rate, click_to_open_rate, first_event_at, last_event_at
WELCOME_1 = (
    "5001",
    "Welcome!",  # E-06 (10-06 08:00) is the latest event with a subject; E-13 has none
    3,  # E-01..03
    4,  # E-04, E-05, E-06 (ann, delivery 9001, three times), E-07 (bob)
    2,  # recipients 9001 and 9002
    1,  # E-08
    1,
    1,  # E-09
    1,  # E-13
    D("0.66666666666666666667"),  # 2 unique opens / 3 delivered (numeric division)
    D("0.33333333333333333333"),  # 1 / 3
    D("0.5"),  # 1 unique click / 2 unique opens
    at("2026-10-05 09:00"),  # E-01
    at("2026-10-06 09:00"),  # E-13
)
TIPS_1 = (
    "5002",
    "Tips",
    0,  # never delivered: the rates over deliveries are NULL, not 0
    1,  # E-12
    1,  # recipient: no delivery_id, no user_id -> bob@example.com
    2,  # E-10 (bob, 9102), E-11 (dan, 9104)
    2,
    0,
    0,
    None,
    None,
    D(2),  # 2 unique clicks / 1 unique open
    at("2026-10-06 13:59"),  # E-12
    at("2026-10-06 15:00"),  # E-11
)
WELCOME_2 = (
    "5001",
    "Welcome!",  # E-24 (10-07 20:00) carries it too
    3,
    4,
    2,
    2,  # + E-24 (bob, 9002)
    2,
    1,
    1,
    D("0.66666666666666666667"),
    D("0.66666666666666666667"),
    D(1),
    at("2026-10-05 09:00"),
    at("2026-10-07 20:00"),  # E-24
)
TIPS_2 = (
    "5002",
    "Tips",
    1,  # E-22 (ann, 9101)
    2,  # + E-21 (cat, 9103)
    2,  # bob@example.com, 9103
    2,
    2,
    0,
    0,
    D(2),  # 2 unique opens / 1 delivered: opens from untracked deliveries
    D(2),
    D(1),
    at("2026-10-06 13:00"),  # E-22
    at("2026-10-07 08:00"),  # E-21
)

# day, event, events, unique_people (user_id, else anonymous_id)
DAILY_1 = [
    (at("2026-10-05 00:00").date(), "email_bounced", 1, 1),  # E-09
    (at("2026-10-05 00:00").date(), "email_delivered", 3, 3),  # E-01..03: u_ann, bob@, u_cat
    (at("2026-10-05 00:00").date(), "email_link_clicked", 1, 1),  # E-08
    (at("2026-10-05 00:00").date(), "email_opened", 3, 2),  # E-04, E-05 (ann), E-07 (bob)
    (at("2026-10-06 00:00").date(), "email_link_clicked", 2, 2),  # E-10 bob, E-11 dan
    (at("2026-10-06 00:00").date(), "email_marked_as_spam", 1, 1),  # E-13
    (at("2026-10-06 00:00").date(), "email_opened", 2, 2),  # E-06 ann, E-12 bob
    (at("2026-10-06 00:00").date(), "email_unsubscribed", 1, 1),  # E-14: 22:30 UTC
    (at("2026-10-07 00:00").date(), "email_unsubscribed", 3, 2),  # E-15, E-16 cat, E-20 dan
    (at("2026-10-08 00:00").date(), "email_unsubscribed", 1, 1),  # E-17: 11:00+02 = 09:00 UTC
]
DAILY_2 = sorted(
    [
        *DAILY_1,
        (at("2026-10-06 00:00").date(), "email_delivered", 1, 1),  # E-22
        (at("2026-10-07 00:00").date(), "email_link_clicked", 1, 1),  # E-24
        (at("2026-10-07 00:00").date(), "email_opened", 1, 1),  # E-21
    ]
)

# campaign_id, campaign_name, unsubscribes (distinct people), first_at, last_at
UNSUBSCRIBES_1 = [
    # bob (E-14) and cat (E-15, E-16: one person); the latest name is E-16's
    ("4455667", "Onboarding course", 2, at("2026-10-06 22:30"), at("2026-10-07 10:00")),
    ("7788", "Newsletter", 1, at("2026-10-07 15:00"), at("2026-10-07 15:00")),  # E-20
    (None, None, 1, at("2026-10-08 09:00"), at("2026-10-08 09:00")),  # E-17: all
]

# id, email, user_id, status, tags, custom_fields, time_zone, lead_score, lifetime_value,
# created_at, first_seen_at, last_seen_at
ANN_1 = (
    "sub_ann",
    "ann@example.com",
    "u_ann",
    "unsubscribed",  # E-17 (10-08 09:00 UTC) is ann's latest event ...
    ["Customer", "VIP"],  # ... though E-18 (10-07) was loaded after it
    {"first_name": "Ann"},
    "Europe/Berlin",
    D(42),
    D(1999),
    at("2026-01-15 08:30"),
    at("2026-10-05 09:00"),  # E-01
    at("2026-10-08 09:00"),  # E-17
)
BOB_1 = (
    "sub_bob",
    "bob@example.com",
    None,
    "active",
    [],
    {},
    "America/New_York",
    None,  # E-14's lead_score is "high": not a number
    D(0),
    at("2026-03-01 12:00"),  # no offset: UTC
    at("2026-10-05 09:00:05"),  # E-02
    at("2026-10-06 22:30"),  # E-14
)
CAT_1 = (
    "sub_cat",
    "cat@example.com",
    "u_cat",  # " u_cat " trimmed
    "active",
    ["Lead"],  # E-16
    {"first_name": "Cat", "plan": "pro"},
    "UTC",
    D(5),
    D("12.5"),
    None,  # "not a date"
    at("2026-10-05 09:00:10"),  # E-03
    at("2026-10-07 10:00"),  # E-16
)
EVE_1 = (
    "12345",  # a numeric id, as decimal text
    "eve@example.com",
    "u_eve",
    "active",
    ["Lead"],
    {},
    None,  # no time_zone key
    D(7),
    D(0),
    at("2026-10-04 00:00"),  # 2026-10-03T23:00:00-01:00
    at("2026-10-04 00:00"),  # E-19, a non-email event
    at("2026-10-04 00:00"),
)
# after the second load
ANN_2 = (*ANN_1[:10], at("2026-10-04 07:00"), ANN_1[11])  # E-23 widens first_seen only
BOB_2 = (
    *BOB_1[:4],
    ["Customer"],
    {},
    "America/New_York",
    D(3),
    D(0),
    *BOB_1[9:11],
    at("2026-10-07 20:00"),
)
FAY_2 = (
    "sub_fay",
    "fay@example.com",
    "u_fay",
    "active",
    [],
    {},
    "UTC",
    D(20),  # E-25 is newer than E-26 though it comes first in the file
    D(0),
    at("2026-10-09 09:00"),
    at("2026-10-09 09:00"),  # E-26
    at("2026-10-09 10:00"),  # E-25
)


@pytest.fixture
def first_load(settings: Settings, tmp_path: Path) -> RunReport:
    return load(settings, tmp_path, "batch1.ndjson", BATCH_1)


def test_first_load_counts(first_load: RunReport) -> None:
    assert (first_load.landed, first_load.not_email, first_load.rejected) == (20, 2, 0)
    assert first_load.rows_added == {
        "tracks": 18,
        "email_delivered": 3,
        "email_opened": 5,
        "email_link_clicked": 3,
        "email_unsubscribed": 5,
        "email_bounced": 1,
        "email_marked_as_spam": 1,
        "subscribers": 4,  # ann, bob, cat, eve; dan has no subscriber id
        "outbox": 0,  # forwarding to Segment is off until the first emit
    }


def test_email_performance(first_load: RunReport, engine: Engine) -> None:
    assert rows(engine, PERFORMANCE) == [WELCOME_1, TIPS_1]


def test_daily_email_activity(first_load: RunReport, engine: Engine) -> None:
    assert rows(engine, DAILY) == DAILY_1


def test_campaign_unsubscribes(first_load: RunReport, engine: Engine) -> None:
    assert rows(engine, UNSUBSCRIBES) == UNSUBSCRIBES_1


def test_subscribers_hold_the_latest_snapshot(first_load: RunReport, engine: Engine) -> None:
    assert rows(engine, SUBSCRIBERS) == [EVE_1, ANN_1, BOB_1, CAT_1]


def test_incremental_load_updates_views_and_subscribers(
    first_load: RunReport, settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    second = load(settings, tmp_path, "batch2.ndjson", BATCH_2)

    assert (second.landed, second.duplicates) == (6, 1)
    assert second.rows_added["tracks"] == 3
    assert second.rows_added["subscribers"] == 1  # fay
    assert rows(engine, PERFORMANCE) == [WELCOME_2, TIPS_2]
    assert rows(engine, DAILY) == DAILY_2
    assert rows(engine, UNSUBSCRIBES) == UNSUBSCRIBES_1
    assert rows(engine, SUBSCRIBERS) == [EVE_1, ANN_2, BOB_2, CAT_1, FAY_2]


def test_reloading_changes_nothing(
    first_load: RunReport, settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    again = load(settings, tmp_path, "batch1-again.ndjson", BATCH_1)

    assert (again.landed, again.duplicates, again.rows_added["subscribers"]) == (0, 20, 0)
    assert rows(engine, SUBSCRIBERS) == [EVE_1, ANN_1, BOB_1, CAT_1]


def test_snapshots_queued_before_a_crash_are_merged_by_the_next_run(
    settings: Settings, engine: Engine
) -> None:
    # The landing maps each chunk and queues its subscriber snapshots; the merge runs at
    # the end of the run.  A run that died in between left them queued, not lost.
    from loader.pipeline.land import land_records

    records = [(f"case:{n}", body, len(body)) for n, body in enumerate(BATCH_1)]
    land_records(
        engine, records, schema="drip", load_id="died", batch_size=100, max_record_bytes=1 << 20
    )
    assert rows(engine, "SELECT count(*) FROM drip.subscribers") == [(0,)]

    report = run_pipeline(settings, [])  # the scheduled job, with nothing new to load

    assert report.rows_added["subscribers"] == 4
    assert rows(engine, SUBSCRIBERS) == [EVE_1, ANN_1, BOB_1, CAT_1]
    assert rows(engine, "SELECT count(*) FROM drip._subscriber_changes") == [(0,)]


def test_queued_events_and_rebuild_give_the_same_subscribers(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    # The webhook path queues events; the transform claims them in batches of 3 here, so
    # one subscriber's events are spread over several batches, in file order.

    records = [(f"case:{n}", body, len(body)) for n, body in enumerate(BATCH_1 + BATCH_2)]
    queue_records(engine, records, load_id="q")
    run_transforms(engine, schema="drip", batch_size=3)
    expected = [EVE_1, ANN_2, BOB_2, CAT_1, FAY_2]
    assert rows(engine, SUBSCRIBERS) == expected

    with engine.begin() as conn:  # what a mapping fix repairs
        conn.execute(text("UPDATE drip.subscribers SET email = 'wrong', status = NULL"))
    report = rebuild_tables(engine, schema="drip", batch_size=5)
    assert report.rows_added["subscribers"] == 0  # refreshed in place
    assert rows(engine, SUBSCRIBERS) == expected


def test_odd_snapshots_never_stop_a_load(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    # Snapshot fields are not validated at landing (non-email events are never rejected).
    bodies = [
        webhook("subscriber.created", {"id": "s1", "tags": "VIP", "lead_score": {"x": 1}},
                "2026-10-01T00:00:00Z"),
        webhook("subscriber.created", {"id": "s2", "created_at": "2026-02-30T00:00:00Z",
                                       "lifetime_value": True}, "2026-10-01T00:00:00Z"),
        webhook("subscriber.created", {"id": {"nested": 1}}, "2026-10-01T00:00:00Z"),
        webhook("subscriber.created", {"id": ""}, "2026-10-01T00:00:00Z", n=2),
        b'{"event": "subscriber.created", "data": {"subscriber": "oops"}, '
        b'"occurred_at": "2026-10-01T00:00:00Z"}',
        b'{"event": "subscriber.created", "data": [1, 2], "occurred_at": "2026-10-01T00:00:00Z"}',
    ]  # fmt: skip
    report = load(settings, tmp_path, "odd.ndjson", bodies)

    assert (report.landed, report.rejected, report.rows_added["subscribers"]) == (6, 0, 2)
    first = at("2026-10-01 00:00")
    assert rows(engine, SUBSCRIBERS) == [
        ("s1", None, None, None, "VIP", None, None, None, None, None, first, first),
        ("s2", None, None, None, None, None, None, None, None, None, first, first),
    ]


def test_same_instant_in_one_batch_takes_the_greater_event_key(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    from loader.domain.events import parse_record

    one = webhook("subscriber.applied_tag", {"id": "s", "status": "a"}, "2026-10-01T00:00:00Z", t=1)
    two = webhook("subscriber.applied_tag", {"id": "s", "status": "b"}, "2026-10-01T00:00:00Z", t=2)
    winner = "a" if parse_record(one).key > parse_record(two).key else "b"
    load(settings, tmp_path, "tie.ndjson", [one, two])

    assert rows(engine, "SELECT status FROM drip.subscribers") == [(winner,)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-15T08:30:00Z", at("2026-01-15 08:30")),
        ("2026-01-15T08:30:00.250+02:00", at("2026-01-15 06:30:00.250")),
        ("2026-01-15T08:30:00-0500", at("2026-01-15 13:30")),
        ("2026-01-15 08:30:00", at("2026-01-15 08:30")),  # no offset: UTC
        ("2026-01-15", at("2026-01-15 00:00")),
        ("2026-02-30T00:00:00Z", None),
        ("2026-01-15T25:00:00Z", None),
        ("2026-01-15T08:30:00+16:00", None),
        ("01-15-2026", None),
        ("15/01/2026", None),
        ("now", None),
        ("infinity", None),
        ("2026-01-15 now", None),
        ("", None),
    ],
)
def test_to_timestamptz(engine: Engine, value: str, expected: Any) -> None:
    # The session's time zone must not matter: no offset always means UTC.
    with engine.connect() as conn:
        conn.execute(text("SET TimeZone = 'Asia/Tokyo'"))
        got = conn.execute(text("SELECT drip._to_timestamptz(:v)"), {"v": value}).scalar_one()
    assert got == expected


def _transform(engine: Engine, start: threading.Barrier, errors: list[BaseException]) -> None:
    try:
        start.wait(timeout=30)
        run_transforms(engine, schema="drip", batch_size=300)
    except BaseException as exc:  # reported by the test
        errors.append(exc)


def test_concurrent_transforms_of_the_same_subscribers(engine: Engine) -> None:
    # Two transforms claim disjoint events of the same 300 subscribers at the same time: the
    # upserts lock subscribers in id order, so they wait for each other but never deadlock
    # (a deadlock would fail a batch: run_transforms does not retry), and whichever commits
    # last, each row ends with the newer snapshot and the whole seen span.

    subscribers = [f"s{n:03}" for n in range(300)]
    old = [
        webhook(
            "subscriber.applied_tag", {"id": s, "lead_score": 1}, f"2026-10-01T00:{n % 60:02}:00Z"
        )
        for n, s in enumerate(subscribers)
    ]
    new = [
        webhook("subscriber.applied_tag", {"id": s, "lead_score": 2}, "2026-10-02T00:00:00Z")
        for s in reversed(subscribers)
    ]
    for round_ in range(3):
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE drip.subscribers, drip._raw_events, drip._pending"))
        batches = [new, old] if round_ % 2 else [old, new]
        records = [(f"c:{n}", b, len(b)) for n, b in enumerate(batches[0] + batches[1])]
        queue_records(engine, records, load_id=f"r{round_}")
        start = threading.Barrier(2)
        errors: list[BaseException] = []
        threads = [threading.Thread(target=_transform, args=(engine, start, errors)) for _ in "ab"]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        assert rows(
            engine,
            "SELECT count(*), min(lead_score), max(lead_score), max(last_seen_at),"
            " count(*) FILTER (WHERE first_seen_at < last_seen_at) FROM drip.subscribers",
        ) == [(300, D(2), D(2), at("2026-10-02 00:00"), 300)]


def test_an_older_snapshot_committed_last_does_not_win(engine: Engine) -> None:
    # Merge 1 upserts 50 subscribers' newer snapshots and keeps its transaction open; merge
    # 2, on their older snapshots, has to wait for those rows; when 1 commits, 2 re-checks
    # against the committed rows: the newer snapshots stay, first_seen_at widens.
    from loader.pipeline.transform import merge_subscribers, transform_batch
    from loader.warehouse.db import set_search_path

    subscribers = [f"s{n:02}" for n in range(50)]
    new = [
        webhook("subscriber.applied_tag", {"id": s, "lead_score": 2}, "2026-10-02T00:00:00Z")
        for s in subscribers
    ]
    old = [
        webhook("subscriber.applied_tag", {"id": s, "lead_score": 1}, "2026-10-01T00:00:00Z")
        for s in reversed(subscribers)
    ]
    first, second = engine.connect(), engine.connect()
    try:
        for conn in (first, second):
            set_search_path(conn, "drip")
            conn.commit()
        # the newer snapshots are queued first, so the first merge takes exactly them
        for n, bodies in enumerate((new, old)):
            records = [(f"c{n}:{i}", b, len(b)) for i, b in enumerate(bodies)]
            queue_records(engine, records, load_id=f"w{n}")
            with first.begin():
                assert transform_batch(first, batch_size=50)[0] == 50
        first.begin()
        assert merge_subscribers(first, limit=50) == (50, 50)  # the newer snapshots
        done: list[tuple[int, int]] = []

        def run_second() -> None:
            with second.begin():
                done.append(merge_subscribers(second, limit=50))

        thread = threading.Thread(target=run_second)
        thread.start()
        waiting = 0
        for _ in range(200):  # up to 10 s for merge 2 to block on merge 1's rows
            waiting = rows(
                engine,
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )[0][0]
            if waiting or not thread.is_alive():
                break
            time.sleep(0.05)
        assert waiting == 1
        first.commit()
        thread.join(timeout=30)
        assert done == [(50, 0)]  # the older snapshots: nothing inserted, first_seen_at widened
    finally:
        first.close()
        second.close()
    assert rows(
        engine,
        "SELECT count(*), min(lead_score), max(lead_score), min(first_seen_at), max(last_seen_at)"
        " FROM drip.subscribers",
    ) == [(50, D(2), D(2), at("2026-10-01 00:00"), at("2026-10-02 00:00"))]


def test_a_merge_split_in_parts_ends_like_one_merge(engine: Engine) -> None:
    # 120 subscribers, each with an older and a newer snapshot queued in either order: the
    # merge split three ways (as a load with --writers 3 ends) and the single merge leave
    # the same rows, and the split one took every queued snapshot.
    from loader.pipeline.transform import merge_in_parallel, transform_batch
    from loader.warehouse.db import set_search_path

    bodies = []
    for n in range(120):
        older = webhook(
            "subscriber.applied_tag", {"id": f"p{n}", "lead_score": 1}, "2026-10-01T00:00:00Z"
        )
        newer = webhook(
            "subscriber.applied_tag", {"id": f"p{n}", "lead_score": 2}, "2026-10-02T00:00:00Z"
        )
        bodies += [newer, older] if n % 2 else [older, newer]
    seen = []
    for parts in (1, 3):
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE drip.subscribers, drip._raw_events, drip._pending"))
        records = [(f"m{parts}:{i}", b, len(b)) for i, b in enumerate(bodies)]
        queue_records(engine, records, load_id=f"m{parts}")
        with engine.connect() as conn:
            set_search_path(conn, "drip")
            conn.commit()
            with conn.begin():
                assert transform_batch(conn, batch_size=1000)[0] == 240
            taken: list[int] = []
            inserted = merge_in_parallel(
                engine, conn, schema="drip", parts=parts, on_batch=taken.append
            )
        assert (inserted, sum(taken)) == (120, 240)
        assert rows(engine, "SELECT count(*) FROM drip._subscriber_changes") == [(0,)]
        seen.append(
            rows(
                engine,
                "SELECT id, lead_score, first_seen_at, last_seen_at FROM drip.subscribers ORDER BY id",
            )
        )
    assert seen[0] == seen[1]
    assert seen[0][0] == ("p0", D(2), at("2026-10-01 00:00"), at("2026-10-02 00:00"))
