"""What the debugger page shows of a recorded request: one row per event, with its outcome."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson

from loader.domain.events import parse_record
from loader.serve.debugger.recorder import BODY_CAP, Entry, Recorder
from loader.serve.debugger.view import Reject, items, reject_rows, rows
from tests.casefiles import case_bytes

CLICK = case_bytes("email_link_clicked")  # john@acme.com
TAG = case_bytes("applied_tag")
ON = frozenset({"email_link_clicked", "email_opened"})
ORIGIN = "webhook:10.0.0.9:2026-12-05T10:00:00.000001+00:00"


def entry(status: int, body: bytes | None, *, seq: int = 1, reasons: tuple[str, ...] = ()) -> Entry:
    size = len(body) if body is not None else 0
    return Entry(seq, 1_796_464_800.5, status, "10.0.0.9", ORIGIN, size, body, reasons)


def shown(
    *entries: Entry, stored: dict[str, str] | None = None, pii: bool = False
) -> list[dict[str, Any]]:
    return rows(items(entries), stored=stored, enabled=ON, show_pii=pii)


def test_a_request_that_stored_its_event_first_landed_a_retry_is_a_duplicate() -> None:
    key = parse_record(CLICK).key
    first, retry = entry(200, CLICK, seq=1), entry(200, CLICK, seq=2)._replace(origin="webhook:x")
    [landed, duplicate] = shown(first, retry, stored={key: ORIGIN})
    assert landed == {
        "seq": 1,
        "index": None,
        "time": "2026-12-05T10:00:00.500+00:00",
        "status": 200,
        "outcome": "landed",
        "reason": None,
        "event": "subscriber.clicked_email",
        "collection": "email_link_clicked",
        "email": "j***@acme.com",
        "client": "10.0.0.9",
        "size": len(CLICK),
        "body": landed["body"],
        "truncated": False,
    }
    assert (duplicate["outcome"], duplicate["reason"]) == ("duplicate", f"stored first by {ORIGIN}")
    body = json.loads(landed["body"])
    assert body["data"]["subscriber"]["email"] == "j***@acme.com"
    assert body["data"]["properties"]["ip_address"] == "***"
    assert "john@acme.com" not in json.dumps(landed)
    assert landed["body"].startswith('{\n  "event"')  # pretty-printed


def test_an_event_whose_collection_is_off_is_kept_raw() -> None:
    [row] = shown(entry(200, TAG), stored={parse_record(TAG).key: ORIGIN})
    assert (row["event"], row["collection"], row["outcome"]) == (
        "subscriber.applied_tag",
        "kept raw",
        "landed",
    )
    [row] = rows(
        items([entry(200, TAG)]),
        stored={},
        enabled=ON | {"subscriber_applied_tag"},
        show_pii=False,
    )
    assert (row["collection"], row["outcome"]) == ("subscriber_applied_tag", "stored")


def test_each_element_of_an_array_is_a_row_with_its_own_outcome() -> None:
    body = b"[" + CLICK + b", 7, " + TAG + b"]"
    key = parse_record(CLICK).key
    found = shown(
        entry(400, body, reasons=("[1] not a JSON object (got a number)",)),
        stored={key: ORIGIN + "[0]", parse_record(TAG).key: "file.ndjson:3"},
    )
    assert [(r["index"], r["outcome"], r["reason"], r["event"]) for r in found] == [
        (0, "landed", None, "subscriber.clicked_email"),
        (1, "rejected", "not a JSON object (got a number)", None),
        (2, "duplicate", "stored first by file.ndjson:3", "subscriber.applied_tag"),
    ]
    assert [r["truncated"] for r in found] == [False, False, False]
    # an element's size is that of the record stored: the element as compact JSON
    assert [r["size"] for r in found] == [
        len(orjson.dumps(json.loads(b))) for b in (CLICK, b"7", TAG)
    ]


def test_refused_requests_show_why() -> None:
    bad = b'{"event": "subscriber.opened_email", "data": {"subscriber": {"email": "kim@ex.org"}}}'
    found = shown(
        entry(400, bad, seq=1, reasons=("occurred_at is missing",)),
        entry(
            413,
            CLICK[: CLICK.index(b"@acme") + 20],
            seq=2,
            reasons=("body is 9999 bytes, over the limit of 100",),
        ),
        entry(429, CLICK, seq=3, reasons=("not stored: the database is unavailable; retry later",)),
        entry(408, None, seq=4, reasons=("body not received within 30 s (0 of 10 bytes)",)),
        entry(404, None, seq=5),
        entry(200, b"[]", seq=6),
    )
    assert [(r["outcome"], r["event"], r["collection"], r["email"]) for r in found] == [
        ("rejected", "subscriber.opened_email", None, "k***@ex.org"),
        ("too large", "subscriber.clicked_email", None, None),
        ("not stored", "subscriber.clicked_email", "email_link_clicked", "j***@acme.com"),
        ("timed out", None, None, None),
        ("wrong token", None, None, None),
        ("empty", None, None, None),
    ]
    assert found[0]["reason"] == "occurred_at is missing"
    assert found[1]["reason"].startswith("body is 9999 bytes")
    assert "john@acme.com" not in found[1]["body"] and "j***@acme.com" in found[1]["body"]
    assert found[4]["reason"].startswith("the token in the URL is not this server's")
    assert found[4]["body"] is None


def test_the_warehouse_not_answering_leaves_landed_or_duplicate_unknown() -> None:
    [row] = shown(entry(200, CLICK), stored=None)
    assert row["outcome"] == "stored"
    assert row["reason"] == "the warehouse did not answer: landed or duplicate is not known"


def test_show_pii_shows_the_body_as_received() -> None:
    [row] = shown(entry(200, CLICK), stored={}, pii=True)
    assert row["email"] == "john@acme.com"
    assert json.loads(row["body"]) == json.loads(CLICK)


def test_the_ring_keeps_the_last_requests_and_only_the_head_of_a_large_body() -> None:
    recorder = Recorder(capacity=3)
    for n in range(5):
        recorder.record(200, client="c", origin=f"o{n}", size=10, body=b"{}")
    assert [e.origin for e in recorder.since(0)] == ["o2", "o3", "o4"]
    assert [e.seq for e in recorder.since(4)] == [5]
    assert recorder.since(5) == []
    recorder.record(413, client="c", origin="big", size=10**7, body=b"x" * (BODY_CAP + 10))
    [big] = recorder.since(5)
    assert len(big.body or b"") == BODY_CAP


def test_rejects_show_their_reason_and_a_masked_head() -> None:
    at = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    found = reject_rows(
        [
            Reject(
                2,
                at,
                "occurred_at is missing",
                ORIGIN,
                60,
                '{"event": "subscriber.bounced", "data": {"subscriber": {"email": "kim@ex.org"}}}',
            ),
            Reject(1, at, "not JSON", "drip.ndjson:7", 9000, '{"first_name": "Kim", "em'),
        ],
        show_pii=False,
    )
    assert [(r["id"], r["reason"], r["event"], r["email"], r["truncated"]) for r in found] == [
        (2, "occurred_at is missing", "subscriber.bounced", "k***@ex.org", False),
        (1, "not JSON", None, None, True),
    ]
    assert "kim@" not in json.dumps(found) and "Kim" not in json.dumps(found)
