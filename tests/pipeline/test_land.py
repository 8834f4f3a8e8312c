"""Landing: every record is landed once, counted as a duplicate, or rejected with a reason (spec §6)."""

from __future__ import annotations

import gzip
import json
import multiprocessing
from pathlib import Path

from sqlalchemy.engine import Engine

from loader.config import Settings
from loader.domain.sample import generate_events
from loader.pipeline.run import run_pipeline
from tests.casefiles import case, case_bytes, line
from tests.support.warehouse import load_lines, one, rows, snapshot, write_ndjson

OPENED_ID = "drip-c9daf0b892cbfee91c07ed550280e13e04820e09"


def test_exact_and_snapshot_changed_retries_are_one_event(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    body = case("email_opened")
    changed = json.loads(json.dumps(body))
    changed["data"]["subscriber"]["tags"] = ["Customer", "Retried"]
    utc = dict(body, occurred_at="2026-10-06T15:50:02+00:00")
    report = load_lines(settings, tmp_path, [line(body), line(body), line(changed), line(utc)])
    assert (report.read, report.landed, report.duplicates, report.rejected) == (4, 1, 3, 0)
    assert one(engine, "SELECT count(*) AS n, min(id) AS id FROM drip.email_opened") == {
        "n": 1,
        "id": OPENED_ID,
    }
    # the first copy is the one kept
    kept = one(engine, "SELECT payload FROM drip._raw_events")["payload"]
    assert kept["data"]["subscriber"]["tags"] == ["Customer"]


def test_loading_the_same_file_twice_changes_nothing(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    path = write_ndjson(tmp_path / "sample.ndjson", generate_events(events=4000, seed=3))
    first = run_pipeline(settings, [str(path)])
    before = snapshot(engine)
    second = run_pipeline(settings, [str(path)])
    assert snapshot(engine) == before
    assert (second.read, second.landed, second.duplicates) == (4000, 0, 4000)
    assert sum(second.rows_added.values()) == 0
    assert first.read == first.landed + first.duplicates + first.rejected == 4000


def test_an_overlapping_replay_adds_only_the_new_events(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    lines = list(generate_events(events=3000, seed=4))
    load_lines(settings, tmp_path, lines[:2000], "a.ndjson")
    load_lines(settings, tmp_path, lines[1000:], "b.ndjson")
    combined = snapshot(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "TRUNCATE drip._raw_events, drip._rejects, drip.tracks, drip.email_delivered, "
            "drip.email_opened, drip.email_link_clicked, drip.email_unsubscribed, "
            "drip.email_bounced, drip.email_marked_as_spam"
        )
    load_lines(settings, tmp_path, lines, "all.ndjson")
    assert snapshot(engine) == combined


def _load_in_process(url: str, path: str, home: str) -> None:
    run_pipeline(Settings(database_url=url, home=Path(home), batch_size=500), [path])


def test_two_loads_at_once_end_with_the_same_tables_as_one(
    settings: Settings, engine: Engine, tmp_path: Path, db_url: str
) -> None:
    lines = list(generate_events(events=6000, seed=11))
    a = write_ndjson(tmp_path / "a.ndjson", lines)
    b = write_ndjson(tmp_path / "b.ndjson", list(reversed(lines)))
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_load_in_process, args=(db_url, str(p), str(tmp_path))) for p in (a, b)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    concurrent = snapshot(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "TRUNCATE drip._raw_events, drip._rejects, drip.tracks, drip.email_delivered, "
            "drip.email_opened, drip.email_link_clicked, drip.email_unsubscribed, "
            "drip.email_bounced, drip.email_marked_as_spam"
        )
    run_pipeline(settings, [str(a)])
    single = snapshot(engine)
    for table in single:
        if table != "_raw_events":
            assert concurrent[table] == single[table], table
    # raw: same keys (which copy of a snapshot-changed retry wins may differ)
    assert [r[0] for r in concurrent["_raw_events"]] == [r[0] for r in single["_raw_events"]]


BAD_LINES: list[tuple[bytes, str]] = [
    (b"{not json", "not JSON"),
    (b"[1, 2, 3]", "not a JSON object (got an array)"),
    (b'{"occurred_at": "2026-10-06T15:50:02Z", "data": {}}', "event is missing"),
    (
        b'{"event": ["x"], "occurred_at": "2026-10-06T15:50:02Z"}',
        "event must be a string, got an array",
    ),
    (b'{"event": "subscriber.opened_email", "data": {}}', "occurred_at is missing"),
    (
        b'{"event": "subscriber.opened_email", "occurred_at": "2026-13-45"}',
        "occurred_at is not an ISO 8601 timestamp",
    ),
    (
        b'{"event": "subscriber.opened_email", "occurred_at": "2026-10-06T15:50:02Z", '
        b'"data": {"subscriber": {"user_id": "u1"}, "properties": {}}}',
        "email event has no subscriber identity",
    ),
    (
        b'{"event": "subscriber.opened_email", "occurred_at": "2026-10-06T15:50:02Z", '
        b'"data": {"subscriber": {"id": "s"}, "properties": ["x"]}}',
        "data.properties must be an object, got an array",
    ),
    (
        b'{"event": "subscriber.opened_email\xc3\x28", "occurred_at": "2026-10-06T15:50:02Z"}',
        "invalid UTF-8",
    ),
]


def test_every_bad_record_is_kept_with_its_reason_and_origin(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    good = case_bytes("email_opened")
    oversized = (
        b'{"event": "subscriber.applied_tag", "occurred_at": "2026-10-06T15:50:02Z", "pad": "'
        + b"x" * 3000
        + b'"}'
    )
    content = [good, b"", b"   "] + [bad for bad, _ in BAD_LINES] + [oversized]
    path = write_ndjson(tmp_path / "mixed.ndjson", content)
    small = Settings(database_url=settings.database_url, home=settings.home, max_record_bytes=2048)
    report = run_pipeline(small, [str(path)])
    assert (report.read, report.landed, report.rejected) == (
        1 + len(BAD_LINES) + 1,
        1,
        len(BAD_LINES) + 1,
    )
    found = rows(
        engine,
        "SELECT origin, reason, raw_text, raw_bytes, raw_size FROM drip._rejects ORDER BY id",
    )
    origins = [r["origin"] for r in found]
    # blank lines 2 and 3 are skipped, not rejected; line numbers follow the file
    assert origins == [f"{path.resolve()}:{n}" for n in range(4, 4 + len(BAD_LINES) + 1)]
    for (_bad, reason), got in zip(BAD_LINES, found, strict=False):
        assert got["reason"].startswith(reason), got
    invalid_utf8 = found[len(BAD_LINES) - 1]
    assert (
        bytes(invalid_utf8["raw_bytes"]) == BAD_LINES[-1][0]
    )  # exact bytes kept when text is lossy
    assert found[0]["raw_text"] == "{not json" and found[0]["raw_bytes"] is None
    last = found[-1]
    assert last["reason"] == (
        "record is 3085 bytes, over the limit of 2048 "
        "(raise --max-record-bytes / DRIP_LOADER_MAX_RECORD_BYTES to accept it)"
    )
    assert last["raw_size"] == 3085 and len(last["raw_text"]) == 2048


def test_rejects_are_not_duplicated_by_a_rerun(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    path = write_ndjson(tmp_path / "bad.ndjson", [b"{nope", b"[]"])
    assert run_pipeline(settings, [str(path)]).rejected == 2
    assert run_pipeline(settings, [str(path)]).rejected == 2  # reported again ...
    assert one(engine, "SELECT count(*) AS n FROM drip._rejects")["n"] == 2  # ... stored once


def test_hostile_strings_survive(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    body = case("email_opened")
    subject = 'quote " backslash \\ tab \t newline \n emoji 🎉 nul \x00 end'
    body["data"]["properties"]["email_subject"] = subject
    body["data"]["subscriber"]["custom_fields"] = {"k\x00ey": "v\\u0000"}
    report = load_lines(settings, tmp_path, [json.dumps(body).encode()])
    assert (report.landed, report.rejected) == (1, 0)
    stored = one(engine, "SELECT email_subject FROM drip.email_opened")["email_subject"]
    assert stored == subject.replace("\x00", "\ufffd")
    payload = one(engine, "SELECT payload FROM drip._raw_events")["payload"]
    assert payload["data"]["subscriber"]["custom_fields"] == {"k\ufffdey": "v\\u0000"}


def test_json_array_and_gzip_inputs(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    bodies = [case(n) for n in ("email_delivered", "email_opened", "email_link_clicked")]
    array = tmp_path / "events.json"
    array.write_text(json.dumps(bodies, indent=2))
    packed = tmp_path / "events.ndjson.gz"
    packed.write_bytes(gzip.compress(b"\n".join(line(b) for b in bodies)))
    first = run_pipeline(settings, [str(array)])
    second = run_pipeline(settings, [str(packed)])
    assert (first.landed, second.landed, second.duplicates) == (3, 0, 3)
    origins = [
        r["origin"]
        for r in rows(engine, "SELECT origin FROM drip._raw_events ORDER BY occurred_at")
    ]
    starts = [n for n, text in enumerate(array.read_text().splitlines(), 1) if text == "  {"]
    assert origins == [f"{array.resolve()}:{n}[{i}]" for i, n in enumerate(starts)]


def test_copy_lines_keep_instants_text_and_origins_exactly(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    """Each COPY field reaches Postgres as parsed here, whichever way its line was made."""
    from loader.domain.events import parse_record

    body = case_bytes("email_opened")
    stamps = [
        "2026-10-06T15:50:02Z",  # sent as is
        "2026-10-06T17:50:02.25+02:00",
        "2026-10-06T15:50:03-00:00",
        "2026-10-06T15:50:04",  # no offset: UTC, whatever the session time zone
        "2026-10-06T15:50:05.1234567+14:00",  # 7 digits: Python truncates, Postgres would round
        "2026-10-06T15:50:06+15:30",  # Postgres refuses such an offset as text
        "20261006T155007Z",
    ]
    lines = [body.replace(b"2026-10-06T15:50:02Z", s.encode()) for s in stamps]
    odd = b"Day\\u00001 \\\\ \\t \\ud83c\\udf89 \xc3\xa9"
    lines.append(body.replace(b"Day 1", odd).replace(b', "', b',\t\r "').replace(b"02Z", b"09Z"))
    lines.append(body.replace(b'"99999"', b"99999").replace(b"15:50:02Z", b"15:51:00Z"))
    folder = tmp_path / "odd\tname\\dir"
    folder.mkdir()
    with engine.begin() as conn:
        # a session zone with an odd offset: any text read in it instead of UTC shows
        conn.exec_driver_sql(
            f"ALTER DATABASE \"{engine.url.database}\" SET timezone = 'Asia/Kathmandu'"
        )
    report = load_lines(settings, folder, lines)
    assert (report.read, report.landed, report.rejected) == (len(lines), len(lines), 0)
    stored = {
        r["_event_key"]: r
        for r in rows(
            engine, "SELECT _event_key, occurred_at, origin, payload FROM drip._raw_events"
        )
    }
    for number, raw in enumerate(lines, 1):
        record = parse_record(raw)
        row = stored[record.key]
        assert row["occurred_at"] == record.occurred_at
        assert row["origin"] == f"{(folder / 'in.ndjson').resolve()}:{number}"
        assert row["payload"] == json.loads(record.payload)
    again = load_lines(settings, folder, [*lines, body.replace(b"15:50:02Z", b"15:52:00Z")])
    assert (again.read, again.landed, again.duplicates) == (len(lines) + 1, 1, len(lines))


def test_a_line_postgres_refuses_is_kept_as_a_reject_and_its_neighbours_land(
    engine: Engine,
) -> None:
    # Validation in Python should leave nothing for Postgres to refuse; if it ever does, COPY
    # bisects the chunk down to the refused line (here a lone surrogate, which jsonb refuses).
    from loader.pipeline.land import _copy
    from loader.warehouse.sqlfiles import read_sql

    def copy_line(n: int, payload: bytes) -> bytes:
        return b"k%d\t%d\tsubscriber.created\t2026-10-01T00:00:00Z\tf\tfile:%d\t%s\n" % (
            n,
            n,
            n,
            payload,
        )

    good = b'{"event": "subscriber.created"}'
    lines = [copy_line(n, good) for n in range(5)]
    lines[3] = copy_line(3, b'{"event": "\\\\ud800"}')  # COPY text: one backslash reaches jsonb
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(read_sql("land/create_stage.sql"))
        refused = _copy(cursor, b"".join(lines), "load-1")
        cursor.execute("SELECT _event_key FROM _stage ORDER BY seq")
        staged = [r[0] for r in cursor.fetchall()]
    finally:
        raw.rollback()
        raw.close()
    assert staged == ["k0", "k1", "k2", "k4"]
    assert [(row["origin"], row["raw_text"], is_email) for row, is_email in refused] == [
        ("file:3", '{"event": "\\ud800"}', False)
    ]
    assert refused[0][0]["reason"].startswith("refused by Postgres: ")
