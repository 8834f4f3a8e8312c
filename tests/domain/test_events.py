"""Spec §3-§4 and §6 in pure code: the event id contract and which records are bad."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from loader.domain.events import (
    COLLECTIONS,
    EMAIL_EVENTS,
    BadRecord,
    copy_timestamp,
    event_id,
    parse_for_copy,
    parse_occurred_at,
    parse_record,
)
from tests.casefiles import case, case_bytes, line

# Computed outside Python, with the shell:
#   printf '9999999\x1fsubscriber.opened_email\x1fz1togz2hcjrkpp5treip\x1f99999\x1f\x1f1791301802000000' \
#     | sha256sum | cut -c1-40
OPENED_ID = "drip-c9daf0b892cbfee91c07ed550280e13e04820e09"
CLICKED_ID = "drip-40337f85b1c3e203d8f906b08faa5ba3152f011c"
UNSUBSCRIBED_ALL_ID = "drip-7a7e8b14f332e904542c8f60e0adeab14f8e93fb"


def test_seven_drip_events_map_to_six_collections() -> None:
    assert len(EMAIL_EVENTS) == 7
    assert sorted({e.slug for e in EMAIL_EVENTS.values()}) == sorted(COLLECTIONS)
    assert EMAIL_EVENTS["subscriber.unsubscribed_all"].name == "Email Unsubscribed"
    assert EMAIL_EVENTS["subscriber.complained"].slug == "email_marked_as_spam"


def test_event_id_matches_the_hand_computed_value() -> None:
    assert (
        event_id(
            account_id="9999999",
            event="subscriber.opened_email",
            subscriber="z1togz2hcjrkpp5treip",
            scope_id="99999",
            url="",
            occurred_at=datetime(2026, 10, 6, 15, 50, 2, tzinfo=UTC),
        )
        == OPENED_ID
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("email_opened", OPENED_ID),
        ("email_link_clicked", CLICKED_ID),
        # +02:00 is normalised to the instant 09:00:00Z; no scope id, no url
        ("email_unsubscribed_all", UNSUBSCRIBED_ALL_ID),
    ],
)
def test_parse_record_keys_the_spec_examples(name: str, expected: str) -> None:
    assert parse_record(case_bytes(name)).key == expected


def test_z_and_plus_zero_offset_are_the_same_event() -> None:
    body = case("email_opened")
    other = dict(body, occurred_at="2026-10-06T15:50:02+00:00")
    shifted = dict(body, occurred_at="2026-10-06T17:50:02+02:00")
    keys = {parse_record(line(b)).key for b in (body, other, shifted)}
    assert keys == {OPENED_ID}


def test_subscriber_snapshot_is_not_part_of_the_id() -> None:
    body = case("email_opened")
    body["data"]["subscriber"]["tags"] = ["Customer", "Changed"]
    body["data"]["subscriber"]["lead_score"] = 42
    assert parse_record(line(body)).key == OPENED_ID


def test_numeric_ids_hash_as_their_decimal_text() -> None:
    body = case("email_opened")
    body["data"]["account_id"] = 9999999
    body["data"]["properties"]["delivery_id"] = 99999
    assert parse_record(line(body)).key == OPENED_ID


def test_email_stands_in_for_a_missing_subscriber_id() -> None:
    body = case("email_opened")
    del body["data"]["subscriber"]["id"]
    expected = event_id(
        account_id="9999999",
        event="subscriber.opened_email",
        subscriber="john@acme.com",
        scope_id="99999",
        url="",
        occurred_at=datetime(2026, 10, 6, 15, 50, 2, tzinfo=UTC),
    )
    assert parse_record(line(body)).key == expected


def test_microseconds_distinguish_events() -> None:
    body = case("email_opened")
    later = dict(body, occurred_at="2026-10-06T15:50:02.000001Z")
    assert parse_record(line(later)).key != OPENED_ID


def test_non_email_events_are_valid_and_keyed_by_their_properties() -> None:
    tag = case("applied_tag")
    other_tag = json.loads(json.dumps(tag))
    other_tag["data"]["properties"]["tag"] = "Lead"
    first, second = parse_record(line(tag)), parse_record(line(other_tag))
    assert not first.is_email and first.event == "subscriber.applied_tag"
    assert first.key != second.key


def test_original_bytes_are_kept_as_the_payload() -> None:
    raw = case_bytes("email_link_clicked")
    assert parse_record(raw).payload is raw


def test_nul_characters_are_replaced_so_postgres_can_store_them() -> None:
    raw = case_bytes("email_opened").replace(b"Day 1", b"Day\\u00001")
    record = parse_record(raw)
    assert (
        json.loads(record.payload)["data"]["properties"]["email_subject"]
        == "Email Course: Day\ufffd1"
    )
    assert record.key == OPENED_ID  # NUL is not in any key field here


def _bad(mutate: object) -> str:
    body = case("email_opened")
    if callable(mutate):
        mutate(body)
    with pytest.raises(BadRecord) as info:
        parse_record(line(body))
    return info.value.reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object (got an array)"),
        (b'"a string"', "not a JSON object (got a string)"),
        (b'{"occurred_at": "2026-10-06T15:50:02Z"}', "event is missing"),
        (
            b'{"event": 7, "occurred_at": "2026-10-06T15:50:02Z"}',
            "event must be a string, got a number",
        ),
        (b'{"event": "subscriber.opened_email"}', "occurred_at is missing"),
        (
            b'{"event": "x", "occurred_at": "yesterday"}',
            "occurred_at is not an ISO 8601 timestamp: 'yesterday'",
        ),
        (
            b'{"event": "x", "occurred_at": 1791301802}',
            "occurred_at must be an ISO 8601 string, got a number",
        ),
        (b'{"event": "x\xff", "occurred_at": "2026-10-06T15:50:02Z"}', "invalid UTF-8 at byte 12"),
        (b'{"event": "x", "occurred_at": NaN}', "not JSON"),
    ],
)
def test_bad_records_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(BadRecord) as info:
        parse_record(raw)
    assert info.value.reason.startswith(reason)


def test_deeply_nested_json_is_refused_before_anything_recurses_over_it() -> None:
    nested = b'{"event": "subscriber.created", "occurred_at": "2026-10-06T15:50:02Z", "data": '
    deep = nested + b"[" * 65 + b"]" * 65 + b"}"
    with pytest.raises(BadRecord) as info:
        parse_record(deep)
    assert info.value.reason == "JSON is nested deeper than 64 levels"
    assert parse_record(nested + b"[" * 62 + b"]" * 62 + b"}").event == "subscriber.created"


def test_email_event_without_subscriber_identity_is_refused() -> None:
    def drop(body: dict) -> None:  # type: ignore[type-arg]
        del body["data"]["subscriber"]["id"]
        del body["data"]["subscriber"]["email"]

    assert _bad(drop) == "email event has no subscriber identity (no data.subscriber.id or email)"


def test_fields_of_the_wrong_type_are_refused() -> None:
    assert (
        _bad(lambda b: b["data"].update(properties=["x"]))
        == "data.properties must be an object, got an array"
    )
    assert (
        _bad(lambda b: b["data"].update(subscriber="x"))
        == "data.subscriber must be an object, got a string"
    )
    assert _bad(lambda b: b.update(data=None)) == "data is missing"
    assert (
        _bad(lambda b: b["data"]["properties"].update(url={"a": 1}))
        == "data.properties.url must be a string, got an object"
    )
    assert (
        _bad(lambda b: b["data"]["subscriber"].update(user_id=True))
        == "data.subscriber.user_id must be a string, got a boolean"
    )


@pytest.mark.parametrize(
    "text",
    [
        "2026-10-06T15:50:02Z",
        "2026-10-06T15:50:02+00:00",
        "2026-10-06T15:50:02-00:00",
        "2026-10-06T17:50:02+02:00",
        "2026-10-06T01:20:02-14:30",
        "2026-10-06T15:50:02.5Z",
        "2026-10-06T15:50:02.000001+05:45",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
    ],
)
def test_plain_iso_timestamps_go_to_copy_as_they_are(text: str) -> None:
    assert copy_timestamp(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "2026-10-06T15:50:02",  # no offset: UTC by decision, not Postgres' session zone
        "2026-10-06 15:50:02Z",
        "2026-10-06T15:50:02.1234567Z",  # Python truncates the 7th digit, Postgres rounds
        "2026-10-06T15:50:02+15:00",  # Postgres refuses offsets of 16 hours and more
        "2026-10-06T15:50:02+23:59",
        "2026-10-06T15:50:02+05:45:30",
        "2026-10-06T15:50:02+0200",
        "20261006T155002Z",
        "2026-W41-2T15:50:02Z",
        "2026-10-06T15:50",
        "2026-10-06",
    ],
)
def test_other_timestamps_go_to_copy_as_the_utc_instant(text: str) -> None:
    assert copy_timestamp(text) == parse_occurred_at(text).isoformat()


TRICKY = [
    case_bytes("email_opened"),
    case_bytes("email_link_clicked"),
    case_bytes("applied_tag"),
    case_bytes("email_opened").replace(b"Day 1", b"Day\\u00001 \\\\ \\t \\ud83c\\udf89 \xc3\xa9"),
    case_bytes("email_opened").replace(b'"99999"', b"99999").replace(b'"9999999"', b"9999999"),
    case_bytes("email_opened").replace(b"15:50:02Z", b"17:50:02.25+02:00"),
    case_bytes("email_opened").replace(b"15:50:02Z", b"15:50:02"),
    case_bytes("email_opened").replace(b"15:50:02Z", b"15:50:02.1234567-03:30"),
    case_bytes("email_opened").replace(b'"properties": {', b'"properties": {"n": 1.5, '),
    case_bytes("email_opened").replace(b'"properties": {', b'"properties": {"url": null, '),
]


@pytest.mark.parametrize("raw", TRICKY)
def test_parse_for_copy_agrees_with_parse_record(raw: bytes) -> None:
    record = parse_record(raw)
    key, event, occurred_at, is_email, payload, month = parse_for_copy(raw)
    assert (key, event, is_email, payload) == record[:2] + record[3:]
    assert parse_occurred_at(occurred_at) == record.occurred_at
    assert datetime.fromisoformat(copy_timestamp(occurred_at)) == record.occurred_at


@pytest.mark.parametrize(
    "text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:59:59+01:00"]
)
def test_instants_outside_the_datetime_range_are_refused(text: str) -> None:
    assert _bad(lambda b: b.update(occurred_at=text)) == f"occurred_at is out of range: {text!r}"


def test_properties_with_several_bad_fields_name_the_first_in_field_order() -> None:
    def two(body: dict) -> None:  # type: ignore[type-arg]
        body["data"]["properties"] = {"other": [1], "url": [2], "delivery_id": True}

    assert _bad(two) == "data.properties.delivery_id must be a string, got a boolean"
