"""Bad records, one per case of spec §6, and records that only a stricter rule rejects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from loader.domain import events
from tests.casefiles import case, case_bytes, line

LIMIT = 1000
"""``max_record_bytes`` the §6 file is loaded with: its oversize record is over it."""

OPENED = case("email_opened")


def _opened(**changes: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(OPENED))
    body.update(changes)
    return body


def _with_data(**changes: Any) -> dict[str, Any]:
    body = _opened()
    body["data"].update(changes)
    return body


SPEC_6: list[tuple[str, bytes, str]] = [
    # (case, record, the reason it is rejected with); one NDJSON line each, in file order
    ("good", case_bytes("email_opened"), ""),
    (
        "not JSON",
        b'{"event": "subscriber.opened_email", "data":',
        "not JSON: unexpected end of data: line 1 column 45 (char 44)",
    ),
    ("not an object", b'["subscriber.opened_email"]', "not a JSON object (got an array)"),
    ("missing event", line({"occurred_at": "2026-10-06T15:50:02Z"}), "event is missing"),
    ("event not a string", line(_opened(event=42)), "event must be a string, got a number"),
    ("missing occurred_at", line(_opened(occurred_at=None)), "occurred_at is missing"),
    (
        "unparsable occurred_at",
        line(_opened(occurred_at="yesterday")),
        "occurred_at is not an ISO 8601 timestamp: 'yesterday'",
    ),
    (
        "no subscriber identity",
        line(_with_data(subscriber={"status": "active"})),
        "email event has no subscriber identity (no data.subscriber.id or email)",
    ),
    (
        "properties is a list",
        line(_with_data(properties=["99999"])),
        "data.properties must be an object, got an array",
    ),
    (
        "over the size limit",
        line(_opened(padding="x" * LIMIT)),
        f"record is 1457 bytes, over the limit of {LIMIT} "
        "(raise --max-record-bytes / DRIP_LOADER_MAX_RECORD_BYTES to accept it)",
    ),
    (
        "invalid UTF-8",
        case_bytes("email_opened").replace(b"John", b"J\xffhn"),
        "invalid UTF-8 at byte 216",
    ),
]
"""Every case of spec §6, and one good record first."""


def spec6_lines() -> list[bytes]:
    return [record for _, record, _ in SPEC_6]


def nested(record: bytes, depth: int = 10) -> bytes:
    """``record`` (a JSON object) with an ``extra`` field nested ``depth`` levels deep in
    all: a rule that allows fewer levels rejects it, the default one (64) does not."""
    body = json.loads(record)
    extra: Any = "deep"
    for _ in range(depth - 1):
        extra = {"next": extra}
    body["extra"] = extra
    return line(body)


@contextmanager
def max_depth(depth: int) -> Iterator[None]:
    """A stricter (or looser) nesting rule in this process, as an older or newer
    drip-loader would have; restored afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(events, "MAX_DEPTH", depth)
        yield
