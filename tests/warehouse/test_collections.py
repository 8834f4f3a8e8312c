"""Opt-in collections (spec §9): every Drip event as a table once turned on, backfilled from
raw exactly once, safely while loads run; off again, new events stay raw only."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from loader.cli.app import app
from loader.config import Settings
from loader.domain import registry
from loader.domain.events import parse_record
from loader.domain.registry import resolve
from loader.domain.sample import example_properties, write_sample
from loader.pipeline.emit import emit_events
from loader.pipeline.extract import RawRecord
from loader.pipeline.rebuild import rebuild_tables
from loader.pipeline.transform import run_transforms
from loader.warehouse import migrate
from loader.warehouse.collections import (
    disable_collections,
    disable_warning,
    enable_collections,
    list_collections,
)
from loader.warehouse.db import make_engine
from loader.warehouse.mapping import ALL
from tests.casefiles import CASES, case_bytes
from tests.support.segment_sink import SegmentSink
from tests.support.warehouse import load_lines, one, queue_records, rows, snapshot, start_load

SUB = {"id": "z1togz2hcjrkpp5treip", "email": "john@acme.com", "user_id": "u_123"}
PROPERTIES: dict[str, dict[str, Any]] = {
    source.drip_event: example_properties(source, c)
    for c in registry.COLLECTIONS
    if not c.email
    for source in c.sources
}
"""One event of each of the 22 other Drip events, with its properties as sample bodies have
them (from the registry's examples)."""
EMAIL_CASES = sorted(p.stem for p in CASES.glob("email_*.json"))


def body(event: str, properties: Any, *, at: str = "2026-10-06T16:00:00Z") -> dict[str, Any]:
    return {
        "event": event,
        "data": {"account_id": "9999999", "subscriber": SUB, "properties": properties},
        "occurred_at": at,
    }


def all_29() -> list[bytes]:
    return [case_bytes(n) for n in EMAIL_CASES] + [
        orjson.dumps(body(e, p)) for e, p in PROPERTIES.items()
    ]


def count(engine: Engine, table: str) -> int:
    return int(one(engine, f"SELECT count(*) AS n FROM drip.{table}")["n"])


def counts(engine: Engine) -> dict[str, int]:
    return {name: count(engine, name) for name in ("tracks", *ALL)}


def table_of(event: str) -> str:
    return registry.BY_DRIP_EVENT[event].name


def test_a_new_warehouse_has_a_setting_for_every_collection(engine: Engine) -> None:
    states = list_collections(engine, schema="drip").states
    assert [s.name for s in states] == list(ALL)
    assert [s.name for s in states if s.enabled] == list(registry.DEFAULT_ON)
    assert {s.changed_at for s in states} == {None}
    settings = rows(engine, "SELECT name FROM drip._collections ORDER BY name")
    assert sorted(ALL) == [r["name"] for r in settings]


def test_with_nothing_enabled_a_load_of_all_29_events_fills_the_email_tables_only(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    report = load_lines(settings, tmp_path, all_29())
    assert (report.landed, report.rejected, report.not_email) == (29, 0, 22)
    assert counts(engine) == {
        "tracks": 7,
        **{name: int(name in registry.DEFAULT_ON) for name in ALL},
        "email_unsubscribed": 2,
    }
    assert report.rows_added == {
        "tracks": 7,
        "email_delivered": 1,
        "email_opened": 1,
        "email_link_clicked": 1,
        "email_unsubscribed": 2,
        "email_bounced": 1,
        "email_marked_as_spam": 1,
        "outbox": 0,
        "subscribers": 4,  # the case files' subscribers and SUB
    }
    assert count(engine, "_raw_events") == 29


def test_enable_all_backfills_every_landed_event_once(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    load_lines(settings, tmp_path, all_29())

    change = enable_collections(engine, schema="drip")

    assert change.changed == list(registry.OPT_IN)
    assert change.unchanged == list(registry.DEFAULT_ON)
    assert change.rows_added == {"tracks": 22, **dict.fromkeys(registry.OPT_IN, 1)}
    assert counts(engine) == {**counts(engine), "tracks": 29}
    assert all(count(engine, name) == 1 for name in registry.OPT_IN)
    for event, properties in PROPERTIES.items():
        key = parse_record(orjson.dumps(body(event, properties))).key
        track = one(engine, "SELECT * FROM drip.tracks WHERE id = :id", id=key)
        assert track["event"] == table_of(event)
        assert track["event_text"] == registry.BY_DRIP_EVENT[event].event_text
        assert (track["user_id"], track["anonymous_id"]) == ("u_123", None)  # spec §3
        assert track["context_traits_email"] == "john@acme.com"
        assert track["context_drip_subscriber_id"] == SUB["id"]
    for c in registry.COLLECTIONS:
        if c.email:
            continue
        [source] = c.sources
        row = one(engine, f"SELECT * FROM drip.{c.name}")
        assert (row["event"], row["event_text"]) == (c.name, c.event_text)
        assert row["context_library_name"] == "drip-loader"
        sent = PROPERTIES[source.drip_event]
        for prop in c.properties:
            expected = sent if prop.type == "jsonb" else _as_text(sent[prop.path])
            assert row[prop.column] == expected, (c.name, prop.column)
        context = {extra.column: sent[extra.key] for extra in c.context}
        for column in ("context_ip", "context_user_agent"):
            assert row[column] == context.get(column), (c.name, column)


def _as_text(value: Any) -> str:
    """A property value as its text column holds it: a JSON number as its decimal text."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def test_numbers_are_stored_as_decimal_text_and_null_as_null(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    enable_collections(engine, schema="drip")
    shapes = [
        body("subscriber.updated_lifetime_value", {"value": 12.50, "previous_value": 7}),
        body("subscriber.removed_from_campaign", {"campaign_id": 4455667}),
        body("subscriber.updated_custom_field", {"identifier": "plan", "previous_value": None}),
        body("subscriber.updated_lead_score", {"lead_score": 61.5, "previous_lead_score": 60}),
    ]
    load_lines(settings, tmp_path, [orjson.dumps(b) for b in shapes])
    assert one(
        engine, "SELECT value, previous_value FROM drip.subscriber_updated_lifetime_value"
    ) == {"value": "12.5", "previous_value": "7"}
    assert one(engine, "SELECT campaign_id FROM drip.subscriber_removed_from_campaign") == {
        "campaign_id": "4455667"
    }
    custom = one(engine, "SELECT value, previous_value FROM drip.subscriber_updated_custom_field")
    assert custom == {"value": None, "previous_value": None}
    assert one(
        engine, "SELECT lead_score, previous_lead_score FROM drip.subscriber_updated_lead_score"
    ) == {"lead_score": "61.5", "previous_lead_score": "60"}


def test_enable_all_is_idempotent(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    load_lines(settings, tmp_path, all_29())
    enable_collections(engine, schema="drip")
    before = snapshot(engine)
    again = enable_collections(engine, schema="drip")
    assert (again.changed, again.rows_added) == ([], {})
    report = load_lines(settings, tmp_path, all_29(), name="again.ndjson")
    assert (report.landed, report.duplicates) == (0, 29)
    assert snapshot(engine) == before
    assert counts(engine)["tracks"] == 29


def test_after_disabling_applied_tag_new_tag_events_are_kept_raw_only(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    enable_collections(engine, schema="drip")
    load_lines(settings, tmp_path, all_29())
    change = disable_collections(engine, schema="drip", names=resolve(["subscriber_applied_tag"]))
    assert change.changed == ["subscriber_applied_tag"]

    later = "2026-10-07T10:00:00Z"
    new = [
        body("subscriber.applied_tag", {"tag": "SEO"}, at=later),
        body("subscriber.removed_tag", {"tag": "SEO"}, at=later),
    ]
    report = load_lines(settings, tmp_path, [orjson.dumps(b) for b in new], name="new.ndjson")

    assert report.landed == 2
    assert [r["tag"] for r in rows(engine, "SELECT tag FROM drip.subscriber_applied_tag")] == [
        PROPERTIES["subscriber.applied_tag"]["tag"]  # rows already written stay
    ]
    assert count(engine, "subscriber_removed_tag") == 2
    assert count(engine, "tracks") == 29 + 1
    assert count(engine, "_raw_events") == 31
    states = {s.name: s for s in list_collections(engine, schema="drip").states}
    assert (states["subscriber_applied_tag"].enabled, states["subscriber_applied_tag"].rows) == (
        False,
        1,
    )
    assert states["subscriber_removed_tag"].enabled
    assert states["email_opened"].drip_events == ("subscriber.opened_email",)


def test_properties_of_the_wrong_shape_are_null_and_the_event_is_never_rejected(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    enable_collections(engine, schema="drip", names=resolve(["subscriber_applied_tag"]))
    enable_collections(engine, schema="drip", names=resolve(["subscriber_performed_custom_event"]))
    odd = [
        body("subscriber.applied_tag", {"tag": {"name": "VIP"}}),
        body("subscriber.applied_tag", {"tag": ["VIP"]}, at="2026-10-06T16:00:01Z"),
        body("subscriber.applied_tag", {"tag": True}, at="2026-10-06T16:00:02Z"),
        body("subscriber.performed_custom_event", ["not", "an", "object"]),
        {
            "event": "subscriber.applied_tag",
            "data": "nothing",
            "occurred_at": "2026-10-06T16:00:03Z",
        },
    ]
    report = load_lines(settings, tmp_path, [orjson.dumps(b) for b in odd])

    assert (report.landed, report.rejected) == (5, 0)
    tags = rows(engine, "SELECT tag, anonymous_id FROM drip.subscriber_applied_tag ORDER BY id")
    assert sorted(str(t["tag"]) for t in tags) == ["None", "None", "None", "true"]
    custom = one(engine, "SELECT action, properties FROM drip.subscriber_performed_custom_event")
    assert custom == {"action": None, "properties": None}
    key = parse_record(orjson.dumps(odd[0])).key
    raw = one(engine, "SELECT payload FROM drip._raw_events WHERE _event_key = :k", k=key)
    assert raw["payload"] == odd[0]  # the raw JSON is kept
    assert count(engine, "tracks") == 5


def _records(bodies: list[dict[str, Any]]) -> list[RawRecord]:
    lines = [orjson.dumps(b) for b in bodies]
    return [(f"webhook:{i}", line, len(line)) for i, line in enumerate(lines)]


def test_events_still_queued_are_left_to_the_transform(engine: Engine) -> None:
    # The webhook receiver lands events in _pending; the backfill leaves them to the
    # transform, which now maps them: each lands in its table once.
    bodies = [body(e, p) for e, p in PROPERTIES.items()]
    queue_records(engine, _records(bodies), load_id="receiver")
    change = enable_collections(engine, schema="drip")
    assert change.rows_added == {}
    result = run_transforms(engine, schema="drip", batch_size=5)
    assert result.rows_added["tracks"] == 22
    assert all(count(engine, name) == 1 for name in registry.OPT_IN)


def test_enabling_in_the_middle_of_a_load_ends_like_one_run(
    db_url: str, engine: Engine, empty_db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "sample.ndjson"
    with path.open("wb") as out:
        write_sample(out, events=30_000, seed=11)
    load = start_load(db_url, path, DRIP_LOADER_BATCH_SIZE="300", DRIP_LOADER_WRITERS="2")
    try:
        deadline = time.monotonic() + 60
        while count(engine, "_raw_events") == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert load.poll() is None, "the load finished before the test could enable"
        change = enable_collections(engine, schema="drip")
        _, stderr = load.communicate(timeout=120)
    finally:
        if load.poll() is None:
            load.kill()
    assert load.returncode == 0, stderr
    assert sum(v for k, v in change.rows_added.items() if k != "tracks") > 0  # it backfilled

    reference = make_engine(empty_db_url)
    try:
        migrate.upgrade(reference, schema="drip")
        enable_collections(reference, schema="drip")
        done = start_load(empty_db_url, path)
        _, stderr = done.communicate(timeout=120)
        assert done.returncode == 0, stderr
        tables = ("tracks", *ALL)
        assert snapshot(engine, tables=tables) == snapshot(reference, tables=tables)
        assert counts(engine)["subscriber_applied_tag"] > 0
    finally:
        reference.dispose()


def test_opted_in_events_are_forwarded_to_segment_like_email_events(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    tag, trigger, custom = (
        body("subscriber.applied_tag", PROPERTIES["subscriber.applied_tag"]),
        body("subscriber.clicked_trigger_link", PROPERTIES["subscriber.clicked_trigger_link"]),
        body("subscriber.performed_custom_event", PROPERTIES["subscriber.performed_custom_event"]),
    )
    load_lines(settings, tmp_path, [orjson.dumps(b) for b in (tag, trigger, custom)])
    with SegmentSink(write_key="wk") as sink:
        first = emit_events(engine, schema="drip", write_key="wk", host=sink.url)
        assert first.sent == 0  # nothing is on yet: the events are raw only
        enable_collections(engine, schema="drip", names=resolve(["subscriber_applied_tag"]))
        enable_collections(
            engine,
            schema="drip",
            names=resolve(["subscriber_clicked_trigger_link", "subscriber_performed_custom_event"]),
        )
        second = emit_events(engine, schema="drip", write_key="wk", host=sink.url)
        third = emit_events(engine, schema="drip", write_key="wk", host=sink.url)
        messages = {m["event"]: m for m in sink.messages}
    assert (second.sent, third.sent) == (3, 0)  # once per id after a 200
    assert len(sink.messages) == 3
    applied = messages["Subscriber Applied Tag"]
    assert applied["messageId"] == parse_record(orjson.dumps(tag)).key
    assert (applied["type"], applied["userId"], applied["properties"]) == (
        "track",
        "u_123",
        PROPERTIES["subscriber.applied_tag"],
    )
    assert applied["timestamp"] == "2026-10-06T16:00:00+00:00"
    assert applied["context"]["traits"] == {"email": "john@acme.com"}
    clicked = messages["Subscriber Clicked Trigger Link"]
    sent = PROPERTIES["subscriber.clicked_trigger_link"]
    assert clicked["properties"] == {k: _as_text(v) for k, v in sent.items() if k != "ip_address"}
    assert clicked["context"]["ip"] == sent["ip_address"]
    custom = PROPERTIES["subscriber.performed_custom_event"]
    assert messages["Subscriber Performed Custom Event"]["properties"] == {
        "action": custom["action"],
        "properties": custom,
    }


def test_rebuild_maps_what_is_on_and_keeps_the_rows_of_collections_that_are_off(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    enable_collections(engine, schema="drip")
    load_lines(settings, tmp_path, all_29())
    disable_collections(engine, schema="drip", names=resolve(["subscriber_applied_tag"]))
    with engine.begin() as conn:  # a mapping fix reaches what is on, not what is off
        for name in ("subscriber_applied_tag", "subscriber_removed_tag"):
            conn.execute(sa.text(f"UPDATE drip.{name} SET tag = 'old'"))

    report = rebuild_tables(engine, schema="drip", batch_size=1000)

    assert [(m.how, m.kept_off) for m in report.months] == [("by key", 1)]
    assert rows(engine, "SELECT tag FROM drip.subscriber_applied_tag") == [{"tag": "old"}]
    removed = PROPERTIES["subscriber.removed_tag"]["tag"]
    assert rows(engine, "SELECT tag FROM drip.subscriber_removed_tag") == [{"tag": removed}]
    assert count(engine, "tracks") == 29
    orphans = " UNION ALL ".join(
        f"SELECT id FROM drip.{name} x WHERE NOT EXISTS "
        f"(SELECT FROM drip.tracks t WHERE t.id = x.id)"
        for name in ALL
    )
    assert rows(engine, orphans) == []
    assert enable_collections(engine, schema="drip").rows_added == {}


def test_the_collections_commands(db_url: str, settings: Settings, tmp_path: Path) -> None:
    env = {"DRIP_LOADER_DATABASE_URL": db_url}
    runner = CliRunner()
    load_lines(settings, tmp_path, all_29())

    listed = runner.invoke(app, ["collections", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert len(lines) == 1 + 28
    assert lines[0].split() == ["collection", "rows", "Drip", "event(s)"]
    assert lines[1].split() == ["email_delivered", "on", "1", "subscriber.received_email"]
    assert lines[-1].split() == [
        "subscriber_performed_custom_event",
        "off",
        "0",
        "subscriber.performed_custom_event",
    ]

    bad = runner.invoke(app, ["collections", "enable", "subscriber_aplied_tag"], env=env)
    assert (bad.exit_code, bad.output) == (
        1,
        "Error: no collection named subscriber_aplied_tag: did you mean subscriber_applied_tag?\n",
    )
    by_event = runner.invoke(app, ["collections", "enable", "subscriber.applied_tag"], env=env)
    assert (by_event.exit_code, by_event.output) == (
        0,
        "Turned on: subscriber_applied_tag\n"
        f"  backfilled {'subscriber_applied_tag':<42}{1:>12}\n"
        f"  backfilled {'tracks':<42}{1:>12}\n",
    )

    enabled = runner.invoke(app, ["collections", "enable", "--all"], env=env)
    assert enabled.exit_code == 0, enabled.output
    assert "Turned on: subscriber_created, " in enabled.output
    assert "backfilled subscriber_removed_tag" in enabled.output

    status = runner.invoke(app, ["status"], env=env)
    assert "collections on: 28 of 28" in status.output
    assert "subscriber_applied_tag" in status.output

    off = runner.invoke(app, ["collections", "disable", "subscriber_applied_tag"], env=env)
    assert (off.exit_code, off.output) == (0, "Turned off: subscriber_applied_tag\n")
    nothing = runner.invoke(app, ["collections", "disable"], env=env)
    assert nothing.exit_code == 1

    # an email collection: the reports would undercount, so it is not turned off unasked
    cost = (
        "email_opened is an email collection: while it is off, new events are kept raw only, "
        "so the reports and attribution undercount them until you turn it on again (which "
        "backfills it)"
    )
    refused = runner.invoke(app, ["collections", "disable", "email_opened"], env=env)
    assert (refused.exit_code, refused.stdout, refused.stderr) == (
        1,
        "",
        f"Error: {cost}; add --yes to go ahead\n",
    )
    status = runner.invoke(app, ["status"], env=env)
    [on] = [line for line in status.output.splitlines() if "collections on:" in line]
    assert on.startswith("  collections on: 27 of 28 (") and "email_opened" in on
    forced = runner.invoke(app, ["collections", "disable", "email_opened", "--yes"], env=env)
    assert (forced.exit_code, forced.stdout, forced.stderr) == (
        0,
        "Turned off: email_opened\n",
        f"Warning: {cost}.\n",
    )


def test_turning_an_email_collection_off_says_what_it_costs() -> None:
    assert disable_warning(resolve(["subscriber_applied_tag", "subscriber.created"])) is None
    assert disable_warning(resolve(["subscriber.opened_email", "subscriber_applied_tag"])) == (
        "email_opened is an email collection: while it is off, new events are kept raw only, "
        "so the reports and attribution undercount them until you turn it on again (which "
        "backfills it)"
    )
    assert disable_warning(resolve(["email_bounced", "email_opened"])) == (
        "email_opened and email_bounced are email collections: while they are off, new events "
        "are kept raw only, so the reports and attribution undercount them until you turn "
        "them on again (which backfills them)"
    )


@pytest.mark.parametrize(("answer", "code"), [(b"n\n", 1), (b"y\n", 0)])
def test_at_a_terminal_turning_an_email_collection_off_asks_first(
    db_url: str, engine: Engine, answer: bytes, code: int
) -> None:
    controller, terminal = os.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loader", "collections", "disable", "email_bounced"],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "DRIP_LOADER_DATABASE_URL": db_url},
        )
        os.write(controller, answer)
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(controller)
        os.close(terminal)
    warning = (
        "Warning: email_bounced is an email collection: while it is off, new events are kept "
        "raw only, so the reports and attribution undercount them until you turn it on again "
        "(which backfills it).\nGo ahead? [y/N] "
    )
    assert proc.returncode == code, err
    assert err.decode() == warning + ("" if code == 0 else "Nothing changed.\n")
    assert out.decode() == ("Turned off: email_bounced\n" if code == 0 else "")
    on = {c.name: c.enabled for c in list_collections(engine, schema="drip").states}
    assert on["email_bounced"] is (code != 0)
