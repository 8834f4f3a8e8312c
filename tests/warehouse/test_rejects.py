"""The rejects table read back: every case of spec §6 is listed and shown as it was kept."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loader.config import Settings
from loader.errors import RejectNotFound
from loader.warehouse.rejects import get_reject, list_rejects
from tests.support.rejects import LIMIT, SPEC_6, spec6_lines
from tests.support.serve import TOKEN, ServeProcess
from tests.support.warehouse import load_lines


@pytest.fixture
def spec6(settings: Settings, engine: Engine, tmp_path: Path) -> Path:
    """The §6 file loaded (its rejects kept); returns the file's path."""
    report = load_lines(
        Settings(database_url=settings.database_url, home=settings.home, max_record_bytes=LIMIT),
        tmp_path,
        spec6_lines(),
        name="spec6.ndjson",
    )
    assert (report.read, report.landed, report.rejected) == (11, 1, 10)
    return (tmp_path / "spec6.ndjson").resolve()


def test_every_case_of_spec_6_is_listed_newest_first_with_its_origin_reason_and_size(
    engine: Engine, spec6: Path
) -> None:
    listed = list_rejects(engine, schema="drip")
    assert listed.matching == 10
    expected = [
        (f"{spec6}:{number}", reason, min(len(record), LIMIT) if number != 10 else 1457)
        for number, (_, record, reason) in enumerate(SPEC_6, 1)
        if reason
    ]
    # one load, one rejected_at: the newest first is the highest id
    assert [(r.origin, r.reason, r.size) for r in listed.rejects] == expected[::-1]
    assert [r.id for r in listed.rejects] == sorted((r.id for r in listed.rejects), reverse=True)
    by_reason = {r.reason: r for r in listed.rejects}
    assert by_reason["not a JSON object (got an array)"].head == '["subscriber.opened_email"]'
    assert by_reason["occurred_at is missing"].head == ('{"event": "subscriber.opened_email", "d…')
    assert all(r.landed_at is None for r in listed.rejects)


def test_list_filters_by_time_and_reason_and_limits(engine: Engine, spec6: Path) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE drip._rejects SET rejected_at = '2026-12-01T00:00:00Z' "
                "WHERE reason LIKE 'occurred_at%'"
            )
        )
    since = datetime(2026, 12, 2, tzinfo=UTC)
    assert list_rejects(engine, schema="drip", since=since).matching == 8
    old = list_rejects(engine, schema="drip", reason="OCCURRED_AT")
    assert [r.reason for r in old.rejects] == [
        "occurred_at is not an ISO 8601 timestamp: 'yesterday'",
        "occurred_at is missing",
    ]
    assert list_rejects(engine, schema="drip", reason="occurred_at", since=since).matching == 0
    assert list_rejects(engine, schema="drip", reason="100%").matching == 0  # no wildcard
    limited = list_rejects(engine, schema="drip", limit=3)
    assert (len(limited.rejects), limited.matching) == (3, 10)
    # the two older ones come last
    assert [r.reason[:11] for r in list_rejects(engine, schema="drip").rejects[-2:]] == [
        "occurred_at",
        "occurred_at",
    ]


def _id(engine: Engine, reason: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT id FROM drip._rejects WHERE reason LIKE :r"), {"r": reason + "%"}
            ).scalar_one()
        )


def test_show_pretty_prints_json_and_says_where_it_came_from(engine: Engine, spec6: Path) -> None:
    reject = get_reject(engine, _id(engine, "email event has no subscriber"), schema="drip")
    lines = reject.lines()
    assert lines[0] == f"Reject {reject.id}: rejected"
    assert lines[2] == f"  origin       {spec6}:8"
    assert lines[3] == (
        "  reason       email event has no subscriber identity (no data.subscriber.id or email)"
    )
    assert lines[4] == "  size         247 bytes"
    assert lines[6] == "Body (JSON, pretty-printed):"
    assert lines[7].splitlines()[:4] == [
        "{",
        '  "event": "subscriber.opened_email",',
        '  "data": {',
        '    "account_id": "9999999",',
    ]
    assert not reject.truncated and reject.retries == ()


def test_show_keeps_invalid_utf8_visible_as_escapes(engine: Engine, spec6: Path) -> None:
    reject = get_reject(engine, _id(engine, "invalid UTF-8"), schema="drip")
    body, shown = reject.body_text()
    assert shown == "not valid UTF-8 from byte 216: bytes shown as \\xNN"
    assert '"first_name": "J\\xffhn"' in body
    assert reject.body == SPEC_6[-1][1]  # the exact bytes are kept


def test_show_says_a_record_cut_at_the_size_limit_cannot_be_retried(
    engine: Engine, spec6: Path
) -> None:
    reject = get_reject(engine, _id(engine, "record is 1457 bytes"), schema="drip")
    assert reject.truncated and (reject.size, reject.stored) == (1457, LIMIT)
    assert reject.lines()[4] == (
        "  size         1,457 bytes, cut at the size limit: only the first 1,000 are kept, "
        "so it cannot be retried"
    )
    assert reject.body_text()[1] == "its first 1,000 of 1,457 bytes, as received"


def test_control_characters_never_reach_the_terminal(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    load_lines(settings, tmp_path, [b"\x1b]0;owned\x07 \x1b[2J\xe2\x80\xae reversed"])
    [line] = list_rejects(engine, schema="drip").rejects
    assert line.head == "\\x1b]0;owned\\x07 \\x1b[2J\\u202e reversed"
    text = "\n".join(get_reject(engine, line.id, schema="drip").lines())
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text


def test_show_of_an_unknown_id_says_how_to_find_one(engine: Engine) -> None:
    with pytest.raises(RejectNotFound) as raised:
        get_reject(engine, 42, schema="drip")
    assert str(raised.value) == (
        "no reject with id 42 in schema 'drip': `drip-loader rejects list` shows the ids"
    )


def test_webhook_rejects_keep_their_origin_and_never_the_token(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    with ServeProcess(db_url, tmp_path / "serve.log", "--max-body-bytes", "2000") as serve:
        assert serve.http.post(serve.webhook, content=b'{"event": 1}').status_code == 400
        assert serve.http.post(serve.webhook, content=b"x" * 3000).status_code == 413
    listed = list_rejects(engine, schema="drip").rejects
    assert [r.reason for r in listed] == [
        "body is 3000 bytes, over the limit of 2000 (raise serve --max-body-bytes to accept it)",
        "event must be a string, got a number",
    ]
    assert all(r.origin.startswith("webhook:127.0.0.1:2") for r in listed)
    assert get_reject(engine, listed[0].id, schema="drip").truncated
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT r::text FROM drip._rejects r")).scalars().all()
    assert len(stored) == 2 and not any(TOKEN in row for row in stored)
