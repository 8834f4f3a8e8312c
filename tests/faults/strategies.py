"""Hypothesis strategies for Drip webhook bodies: valid, near-valid and hostile."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from loader.domain.events import EMAIL_EVENTS

EVENTS = [*EMAIL_EVENTS, "subscriber.created", "subscriber.applied_tag", "x", ""]
ids = st.one_of(
    st.text(min_size=1, max_size=12), st.integers(min_value=-(2**63), max_value=2**63 - 1)
)
texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["'; DROP TABLE drip.tracks; --", 'a"b\\c\td\ne', "\x00", "🎉" * 5, "\ud7ff\ue000"]
    ),
    st.text(min_size=2000, max_size=6000),
)
wrong = st.one_of(
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
)
offsets = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=2)),
        timezone(timedelta(hours=-14)),
        timezone(timedelta(hours=14)),
    ]
)
instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
)
odd_timestamps = st.sampled_from(
    [
        "2026-02-30T00:00:00Z",
        "",
        "T",
        "2026-10-06",
        "20261006T155002Z",
        "2026-10-06T15:50:02.1234567Z",
        "2026-10-06 15:50:02",
        "-0001-01-01T00:00:00Z",
    ]
)


@st.composite
def valid_body(draw: st.DrawFn) -> dict[str, Any]:
    event = draw(st.sampled_from(EVENTS[:9]))
    subscriber = {
        "id": draw(st.one_of(st.none(), ids)),
        "email": draw(st.one_of(st.none(), st.emails(), texts)),
        "user_id": draw(st.one_of(st.none(), ids, st.just("  "))),
        "tags": draw(st.lists(texts, max_size=3)),
    }
    if subscriber["id"] is None and subscriber["email"] is None:
        subscriber["id"] = "fallback"
    properties = {
        k: draw(st.one_of(st.none(), ids, texts))
        for k in draw(
            st.sets(
                st.sampled_from(
                    [
                        "delivery_id",
                        "email_id",
                        "email_subject",
                        "url",
                        "campaign_id",
                        "campaign_name",
                        "ip_address",
                        "user_agent",
                    ]
                )
            )
        )
    }
    moment = draw(instants)
    return {
        "event": event,
        "data": {"account_id": draw(ids), "subscriber": subscriber, "properties": properties},
        "occurred_at": moment.isoformat(),
    }


@st.composite
def near_valid_body(draw: st.DrawFn) -> dict[str, Any]:
    body = draw(valid_body())
    target = draw(
        st.sampled_from(
            ["event", "occurred_at", "data", "subscriber", "properties", "field", "drop"]
        )
    )
    if target in ("event", "occurred_at"):
        body[target] = draw(st.one_of(wrong, odd_timestamps, st.none()))
    elif target == "data":
        body["data"] = draw(wrong)
    elif target == "subscriber":
        body["data"]["subscriber"] = draw(st.one_of(wrong, st.just({})))
    elif target == "properties":
        body["data"]["properties"] = draw(wrong)
    elif target == "field":
        body["data"]["properties"][
            draw(st.sampled_from(["url", "delivery_id", "email_subject"]))
        ] = draw(wrong)
    else:
        body.pop(draw(st.sampled_from(["event", "occurred_at", "data"])))
    return body


@st.composite
def record_line(draw: st.DrawFn) -> bytes:
    """One line of input: a body as JSON, or something hostile; never contains a raw newline."""
    kind = draw(
        st.sampled_from(
            ["valid", "valid", "near", "near", "deep", "utf8", "junk", "blank", "array"]
        )
    )
    if kind in ("valid", "near"):
        body = draw(valid_body() if kind == "valid" else near_valid_body())
        return json.dumps(body, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if kind == "deep":
        depth = draw(st.integers(min_value=10, max_value=3000))
        return (
            b'{"event": "subscriber.created", "occurred_at": "2026-10-06T15:50:02Z", "data": '
            + b"[" * depth
            + b"]" * depth
            + b"}"
        )
    if kind == "utf8":
        good = json.dumps(draw(valid_body())).encode()
        cut = draw(st.integers(min_value=0, max_value=len(good)))
        return (
            good[:cut]
            + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]))
            + good[cut:]
        )
    if kind == "junk":
        return draw(st.binary(max_size=200)).replace(b"\n", b" ").replace(b"\r", b" ")
    if kind == "array":
        return json.dumps([draw(valid_body())]).encode()
    return draw(st.sampled_from([b"", b"   ", b"\t"]))
