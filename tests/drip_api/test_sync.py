"""drip sync: Drip's own records into drip_* tables, a full refresh applied as a diff."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from loader.config import DripSettings, Settings
from loader.drip_api.sync import SyncReport, TableSync, sync_account
from loader.errors import DripGaveUp
from loader.warehouse.status import DripSyncStatus, warehouse_status
from tests.casefiles import case, line
from tests.support.fake_drip import (
    ACCOUNT,
    TOKEN,
    FakeClock,
    FakeDrip,
    Fault,
    bulk_subscriber,
    campaign,
    full_subscriber,
)
from tests.support.warehouse import load_lines, one, rows

TABLES = (
    "drip_subscribers",
    "drip_campaigns",
    "drip_broadcasts",
    "drip_workflows",
    "drip_tags",
    "drip_custom_fields",
)


@pytest.fixture
def drip() -> Iterator[FakeDrip]:
    with FakeDrip() as fake:
        yield fake


def _sync(
    settings: Settings, drip: FakeDrip, clock: FakeClock | None = None, **options: Any
) -> SyncReport:
    return sync_account(
        settings,
        DripSettings(token=TOKEN, api_url=drip.url),
        sleep=clock or FakeClock(),
        **options,
    )


def _keys(engine: Engine, table: str, *, deleted: bool = False) -> set[str]:
    key = {"drip_tags": "name", "drip_custom_fields": "identifier"}.get(table, "id")
    found = rows(engine, f"SELECT {key} AS k, deleted_at FROM drip.{table}")
    return {r["k"] for r in found if (r["deleted_at"] is not None) == deleted}


def test_first_sync_copies_every_record_with_typed_columns(
    settings: Settings, engine: Engine, drip: FakeDrip
) -> None:
    report = _sync(settings, drip)

    assert report.account_id == ACCOUNT
    assert report.tables == {
        "drip_subscribers": TableSync(seen=2100, added=2100),
        "drip_campaigns": TableSync(seen=3, added=3),
        "drip_broadcasts": TableSync(seen=250, added=250),
        "drip_workflows": TableSync(seen=2, added=2),
        "drip_tags": TableSync(seen=3, added=3),
        "drip_custom_fields": TableSync(seen=3, added=3),
    }
    # every status: the API's default would list active subscribers and hide deleted broadcasts
    statuses = rows(
        engine, "SELECT status, count(*) AS n FROM drip.drip_subscribers GROUP BY 1 ORDER BY 1"
    )
    assert statuses == [
        {"status": "active", "n": 701},
        {"status": "undeliverable", "n": 699},
        {"status": "unsubscribed", "n": 700},
    ]
    assert one(engine, "SELECT count(*) AS n FROM drip.drip_broadcasts WHERE status = 'deleted'")[
        "n"
    ] == (50)
    # pages at each endpoint's largest size, 3 of subscribers and of broadcasts
    pages = [(r.path.rsplit("/", 1)[1], r.query.get("page")) for r in drip.calls("GET", "/v2/9")]
    assert pages == [
        ("subscribers", "1"),
        ("subscribers", "2"),
        ("subscribers", "3"),
        ("campaigns", "1"),
        ("broadcasts", "1"),
        ("broadcasts", "2"),
        ("broadcasts", "3"),
        ("workflows", "1"),
        ("tags", "1"),
        ("custom_field_identifiers", "1"),
    ]
    assert {r.query.get("per_page") for r in drip.calls("GET", f"/v2/{ACCOUNT}/subscribers")} == {
        "1000"
    }

    full = one(engine, "SELECT * FROM drip.drip_subscribers WHERE id = 'z5qk8w2m3n'")
    synced = report.started_at
    assert full == {
        "id": "z5qk8w2m3n",
        "status": "active",
        "initial_status": "unsubscribed",
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "address1": "12 St James's Square",
        "address2": None,
        "city": "London",
        "state": "",
        "zip": "SW1Y 4JH",
        "country": "GB",
        "phone": "+44 20 7946 0000",
        "sms_number": "+447700900000",
        "sms_consent": True,
        "eu_consent": "granted",
        "time_zone": "Europe/London",
        "utc_offset": 60,
        "visitor_uuid": "c5a1e5c2d2b34f8e9b1f3a2d4c6e8f00",
        "custom_fields": {"plan": "pro", "seats": 3},
        "tags": ["Customer", "VIP"],
        "ip_address": "203.0.113.9",
        "user_agent": "Mozilla/5.0",
        "original_referrer": "https://news.example/",
        "landing_url": "https://acme.example/pricing",
        "prospect": False,
        "lead_score": Decimal(42),
        "base_lead_score": Decimal(30),
        "lifetime_value": 129900,
        "user_id": "u-1001",
        "created_at": datetime(2024, 2, 29, 8, 15, tzinfo=UTC),
        "href": f"https://api.getdrip.com/v2/{ACCOUNT}/subscribers/z5qk8w2m3n",
        "raw": full_subscriber(),
        "synced_at": synced,
        "deleted_at": None,
    }
    bare = one(engine, "SELECT * FROM drip.drip_subscribers WHERE id = 'm1n1m4l'")
    present = {k for k, v in bare.items() if v is not None}
    assert present == {
        "id",
        "status",
        "email",
        "custom_fields",
        "tags",
        "created_at",
        "href",
        "raw",
        "synced_at",
    }

    onboarding = one(engine, "SELECT * FROM drip.drip_campaigns WHERE id = '11111'")
    assert onboarding["name"] == "Onboarding"
    assert (onboarding["minutes_from_midnight"], onboarding["email_count"]) == (540, 5)
    assert (onboarding["bcc"], onboarding["confirmation_url"]) == (None, None)
    assert onboarding["double_optin"] is True
    assert rows(engine, "SELECT name, raw FROM drip.drip_tags ORDER BY name") == [
        {"name": "Customer", "raw": "Customer"},
        {"name": "SEO", "raw": "SEO"},
        {"name": "VIP", "raw": "VIP"},
    ]
    assert _keys(engine, "drip_custom_fields") == {"first_name", "last_name", "plan"}
    for table in TABLES:
        stamps = rows(engine, f"SELECT DISTINCT synced_at, deleted_at FROM drip.{table}")
        assert stamps == [{"synced_at": synced, "deleted_at": None}], table

    run = one(engine, "SELECT * FROM drip._runs WHERE command = 'drip sync'")
    assert (run["load_id"], run["status"], run["error"]) == (report.load_id, "completed", None)
    assert run["sources"] == f"drip account {ACCOUNT}"
    assert run["counts"]["tables"]["drip_subscribers"] == {
        "seen": 2100,
        "added": 2100,
        "deleted": 0,
    }


def test_second_sync_applies_changes_and_marks_what_disappeared(
    settings: Settings, engine: Engine, drip: FakeDrip
) -> None:
    first = _sync(settings, drip)
    gone = drip.data["subscribers"].pop(5)  # deleted in Drip between the syncs
    drip.data["campaigns"][1] = campaign("22222", "Win-back v2", "active")
    drip.data["campaigns"].append(campaign("44444", "New series", "draft"))
    drip.data["tags"].remove("SEO")

    second = _sync(settings, drip)

    assert second.tables["drip_subscribers"] == TableSync(seen=2099, added=0, deleted=1)
    assert second.tables["drip_campaigns"] == TableSync(seen=4, added=1, deleted=0)
    assert second.tables["drip_tags"] == TableSync(seen=2, added=0, deleted=1)
    assert second.tables["drip_broadcasts"] == TableSync(seen=250, added=0, deleted=0)
    assert _keys(engine, "drip_subscribers", deleted=True) == {gone["id"]}
    kept = one(engine, "SELECT * FROM drip.drip_subscribers WHERE id = :id", id=gone["id"])
    assert (kept["email"], kept["synced_at"], kept["deleted_at"]) == (
        gone["email"],
        first.started_at,
        second.started_at,
    )
    assert rows(engine, "SELECT id, name, status FROM drip.drip_campaigns ORDER BY id") == [
        {"id": "11111", "name": "Onboarding", "status": "active"},
        {"id": "22222", "name": "Win-back v2", "status": "active"},
        {"id": "33333", "name": "Draft series", "status": "draft"},
        {"id": "44444", "name": "New series", "status": "draft"},
    ]
    assert rows(engine, "SELECT name, synced_at, deleted_at FROM drip.drip_tags ORDER BY name") == [
        {"name": "Customer", "synced_at": second.started_at, "deleted_at": None},
        {"name": "SEO", "synced_at": first.started_at, "deleted_at": second.started_at},
        {"name": "VIP", "synced_at": second.started_at, "deleted_at": None},
    ]

    # back in Drip: listed again, no longer deleted
    drip.data["subscribers"].append(gone)
    third = _sync(settings, drip)
    assert third.tables["drip_subscribers"] == TableSync(seen=2100, added=1, deleted=0)
    assert _keys(engine, "drip_subscribers", deleted=True) == set()
    # the same input again changes nothing but synced_at
    fourth = _sync(settings, drip)
    assert fourth.tables["drip_subscribers"] == TableSync(seen=2100)
    assert one(engine, "SELECT count(*) AS n FROM drip.drip_subscribers")["n"] == 2100


def test_a_record_met_twice_while_paging_is_kept_once(
    settings: Settings, engine: Engine, drip: FakeDrip
) -> None:
    drip.insert_while_paging("subscribers", 1, bulk_subscriber(9000))
    report = _sync(settings, drip)
    # the insert pushed page 1's last record onto page 2; the new one is on no page read
    assert report.tables["drip_subscribers"].seen == 2100
    assert one(engine, "SELECT count(*) AS n FROM drip.drip_subscribers")["n"] == 2100


def test_rate_limit_waits_are_counted_and_announced(
    settings: Settings, engine: Engine, drip: FakeDrip
) -> None:
    drip.plan("campaigns", Fault(429), Fault(429, retry_after="5"), Fault(502))
    clock = FakeClock()
    said: list[str] = []
    report = _sync(settings, drip, clock, announce=said.append)
    assert clock.sleeps == [60, 5, 1]
    assert (report.waited_seconds, report.rate_limited, report.retried) == (66, 2, 1)
    assert said == [
        f"Drip rate limit reached on GET /{ACCOUNT}/campaigns: waiting 60 s (no Retry-After)",
        f"Drip rate limit reached on GET /{ACCOUNT}/campaigns: waiting 5 s (Retry-After)",
        f"Drip API GET /{ACCOUNT}/campaigns answered 502: retrying in 1 s",
    ]
    assert report.tables["drip_campaigns"].seen == 3


def test_giving_up_past_max_wait_leaves_each_table_wholly_old_or_wholly_new(
    settings: Settings, engine: Engine, drip: FakeDrip
) -> None:
    first = _sync(settings, drip)
    drip.data["subscribers"].pop(0)
    drip.data["campaigns"].pop(0)
    drip.data["broadcasts"].pop(0)
    # broadcasts: page 1 comes, then Drip rate-limits for longer than the run may wait
    drip.plan("broadcasts", Fault(200), Fault(429, retry_after="4000"))

    with pytest.raises(DripGaveUp):
        _sync(settings, drip, max_wait=3600)

    synced = {
        t: rows(engine, f"SELECT DISTINCT synced_at FROM drip.{t}") for t in TABLES
    }  # one value per table: never half of a sync
    assert {t: len(v) for t, v in synced.items()} == dict.fromkeys(TABLES, 1) | {
        "drip_subscribers": 2,  # the row Drip dropped keeps the first sync's stamp
        "drip_campaigns": 2,
    }
    assert len(_keys(engine, "drip_subscribers", deleted=True)) == 1  # finished: wholly new
    assert len(_keys(engine, "drip_campaigns", deleted=True)) == 1
    broadcasts = rows(engine, "SELECT synced_at, deleted_at FROM drip.drip_broadcasts")
    assert {(r["synced_at"], r["deleted_at"]) for r in broadcasts} == {(first.started_at, None)}
    assert len(broadcasts) == 250  # not started over: wholly old

    runs = rows(engine, "SELECT status, error FROM drip._runs ORDER BY started_at")
    assert [r["status"] for r in runs] == ["completed", "failed"]
    assert runs[1]["error"].startswith("gave up on Drip API GET /9999999/broadcasts: waiting")

    # the next run starts over and finishes
    report = _sync(settings, drip)
    assert report.tables["drip_broadcasts"] == TableSync(seen=249, added=0, deleted=1)


def test_a_query_during_a_sync_sees_the_table_as_it_was(
    settings: Settings, engine: Engine, drip: FakeDrip
) -> None:
    first = _sync(settings, drip)
    drip.data["subscribers"].pop(0)
    drip.plan("subscribers", Fault(200), Fault(200), Fault(200, delay=1.0))  # page 3 is slow
    done: list[SyncReport] = []
    sync = threading.Thread(target=lambda: done.append(_sync(settings, drip)))
    sync.start()
    try:
        assert drip.delaying.wait(30)
        during = one(
            engine,
            "SELECT count(*) FILTER (WHERE deleted_at IS NULL) AS listed, "
            "min(synced_at) AS oldest, max(synced_at) AS newest FROM drip.drip_subscribers",
        )
    finally:
        sync.join(60)
    assert during == {"listed": 2100, "oldest": first.started_at, "newest": first.started_at}
    assert done[0].tables["drip_subscribers"] == TableSync(seen=2099, deleted=1)


def test_max_wait_zero_on_the_first_table_changes_nothing(
    settings: Settings, engine: Engine, drip: FakeDrip
) -> None:
    drip.plan("subscribers", Fault(200), Fault(429))
    with pytest.raises(DripGaveUp):
        _sync(settings, drip, max_wait=0)
    for table in TABLES:
        assert rows(engine, f"SELECT 1 FROM drip.{table}") == [], table
    # the staging table went with its connection
    assert rows(engine, "SELECT relname FROM pg_class WHERE relname LIKE '_stage_%'") == []


def test_analysts_join_unsubscribes_to_campaigns_and_see_both_subscriber_states(
    settings: Settings, engine: Engine, drip: FakeDrip, tmp_path: Path
) -> None:
    unsubscribe = case("email_unsubscribed_campaign")
    unsubscribe["data"]["properties"]["campaign_id"] = "11111"
    unsubscribe["data"]["subscriber"]["id"] = "z5qk8w2m3n"
    webhook_only = case("email_opened")
    load_lines(settings, tmp_path, [line(unsubscribe), line(webhook_only)])
    _sync(settings, drip)

    joined = rows(
        engine,
        "SELECT u.campaign_id, c.name, c.status FROM drip.email_unsubscribed u "
        "JOIN drip.drip_campaigns c ON c.id = u.campaign_id",
    )
    assert joined == [{"campaign_id": "11111", "name": "Onboarding", "status": "active"}]
    assert rows(
        engine,
        "SELECT c.name, u.unsubscribes FROM drip.campaign_unsubscribes u "
        "JOIN drip.drip_campaigns c ON c.id = u.campaign_id",
    ) == [{"name": "Onboarding", "unsubscribes": 1}]

    both = one(engine, "SELECT * FROM drip.subscribers_webhook_and_api WHERE id = 'z5qk8w2m3n'")
    assert (both["in_webhooks"], both["in_api"]) == (True, True)
    assert (both["webhook_email"], both["api_email"]) == ("jane@example.org", "ada@example.com")
    assert both["api_tags"] == ["Customer", "VIP"]
    opened_id = webhook_only["data"]["subscriber"]["id"]
    only_webhook = one(
        engine, "SELECT * FROM drip.subscribers_webhook_and_api WHERE id = :id", id=opened_id
    )
    assert (only_webhook["in_webhooks"], only_webhook["in_api"]) == (True, False)
    counts = one(
        engine,
        "SELECT count(*) AS n, count(*) FILTER (WHERE NOT in_webhooks) AS api_only "
        "FROM drip.subscribers_webhook_and_api",
    )
    assert counts == {"n": 2101, "api_only": 2099}


def test_status_shows_the_last_sync(settings: Settings, engine: Engine, drip: FakeDrip) -> None:
    assert warehouse_status(engine, schema="drip").drip_sync == DripSyncStatus(
        last=None, rows=dict.fromkeys(TABLES, 0)
    )
    report = _sync(settings, drip)
    info = warehouse_status(engine, schema="drip").drip_sync
    run = one(engine, "SELECT started_at, finished_at FROM drip._runs WHERE command = 'drip sync'")
    assert info is not None and info.last is not None
    assert (info.last.started_at, info.last.finished_at) == (run["started_at"], run["finished_at"])
    assert report.started_at <= run["started_at"] <= run["finished_at"]
    assert (info.last.status, info.last.error) == ("completed", None)
    assert info.rows == {
        "drip_subscribers": 2100,
        "drip_campaigns": 3,
        "drip_broadcasts": 250,
        "drip_workflows": 2,
        "drip_tags": 3,
        "drip_custom_fields": 3,
    }
