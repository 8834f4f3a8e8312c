"""``rejects retry``: what passes now lands exactly once, as if loaded now; the rest stays."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loader.config import Settings
from loader.domain.sample import generate_events
from loader.errors import RejectNotFound
from loader.pipeline import retry as retry_module
from loader.pipeline.retry import COMMAND, RetryReport, retry_rejects
from loader.pipeline.run import run_pipeline
from loader.serve.debugger.queries import warehouse_facts
from loader.warehouse.rejects import get_reject, list_rejects
from tests.casefiles import case_bytes
from tests.support.rejects import LIMIT, SPEC_6, max_depth, nested, spec6_lines
from tests.support.warehouse import (
    TABLES,
    load_lines,
    one,
    queue_records,
    rows,
    snapshot,
    write_ndjson,
)

DEEP = "JSON is nested deeper than 8 levels"
NESTED = nested(case_bytes("email_delivered"))  # no record of SPEC_6 is this event


def _retry(engine: Engine, **options: Any) -> RetryReport:
    settings: dict[str, Any] = {
        "schema": "drip",
        "max_record_bytes": 1 << 20,
        "transform_batch_size": 10_000,
    }
    return retry_rejects(engine, **{**settings, **options})


def _settings(settings: Settings, **changes: Any) -> Settings:
    values = {"database_url": settings.database_url, "home": settings.home, **changes}
    return Settings(**values)


def _loaded_directly(
    engine: Engine, settings: Settings, tmp_path: Path, lines: list[bytes]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The warehouse now, and after emptying it and loading ``lines`` directly instead."""
    now = snapshot(engine, tables=TABLES)
    emptied = ", ".join(f"drip.{t}" for t in (*TABLES, "_raw_events", "_pending", "subscribers"))
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {emptied}"))
    load_lines(settings, tmp_path, lines, name="direct.ndjson")
    return now, snapshot(engine, tables=TABLES)


def test_a_reject_that_passes_now_lands_once_with_its_origin_as_if_loaded_now(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    with max_depth(8):  # an older, stricter drip-loader
        load_lines(_settings(settings, max_record_bytes=LIMIT), tmp_path, [NESTED, *spec6_lines()])
    path = (tmp_path / "in.ndjson").resolve()
    [nested_id] = [r.id for r in list_rejects(engine, schema="drip").rejects if r.reason == DEEP]

    report = _retry(engine)

    assert (report.read, report.landed, report.duplicates, report.rejected) == (10, 1, 0, 9)
    assert (report.cut, report.transformed, report.rows_added["email_delivered"]) == (1, 1, 1)
    landed = one(
        engine,
        "SELECT origin, _load_id, received_at FROM drip._raw_events WHERE origin = :o",
        o=f"{path}:1",
    )
    assert landed["_load_id"] == report.load_id
    reject = get_reject(engine, nested_id, schema="drip")
    assert (reject.landed_load_id, reject.reason, reject.first_reason) == (
        report.load_id,
        DEEP,
        DEEP,
    )
    assert reject.landed_at is not None and landed["received_at"] > reject.rejected_at
    assert [(a.load_id, a.outcome, a.reason) for a in reject.retries] == [
        (report.load_id, "landed", None)
    ]
    assert reject.lines()[0].startswith(f"Reject {nested_id}: landed ")
    # the others keep their rows and reasons; the landed one leaves the list, not the table
    still = list_rejects(engine, schema="drip")
    assert still.matching == 10 and nested_id not in {r.id for r in still.rejects}
    assert sorted(r.reason for r in still.rejects) == sorted(
        reason for _, _, reason in SPEC_6 if reason
    )
    assert list_rejects(engine, schema="drip", landed=True).matching == 11
    run = one(
        engine,
        "SELECT command, status, sources, counts FROM drip._runs WHERE load_id = :i",
        i=report.load_id,
    )
    assert (run["command"], run["status"], run["sources"]) == (COMMAND, "completed", "all rejects")
    assert (run["counts"]["landed"], run["counts"]["cut"]) == (1, 1)

    # as if loaded now: the same rows a direct load of the same record gives
    retried, direct = _loaded_directly(engine, settings, tmp_path, [NESTED, SPEC_6[0][1]])
    assert {t: retried[t] for t in (*TABLES, "_raw_events")} == {
        t: direct[t] for t in (*TABLES, "_raw_events")
    }


def test_a_second_retry_lands_nothing_more(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    with max_depth(8):
        load_lines(settings, tmp_path, [NESTED, nested(case_bytes("email_bounced")), b"not json"])
    first = _retry(engine)
    assert (first.landed, first.rejected) == (2, 1)
    # the debugger's rejects panel shows only what is still refused
    panel = warehouse_facts(engine, schema="drip").rejects
    assert [r.reason for r in panel] == [list_rejects(engine, schema="drip").rejects[0].reason]
    assert len(panel) == 1 and panel[0].reason.startswith("not JSON")
    before = snapshot(engine)
    again = _retry(engine)
    assert (again.read, again.landed, again.duplicates, again.rejected) == (1, 0, 0, 1)
    assert snapshot(engine) == before
    by_id = _retry(engine, ids=[r["id"] for r in rows(engine, "SELECT id FROM drip._rejects")])
    assert [r.outcome for r in by_id.outcomes] == ["already landed", "already landed", "rejected"]
    assert by_id.outcomes[0].reason is not None and by_id.outcomes[0].reason.endswith(
        f"run {first.load_id}"
    )
    assert snapshot(engine) == before
    assert (
        one(engine, "SELECT count(*) AS n FROM drip._reject_retries WHERE outcome = 'landed'")["n"]
        == 2
    )


def test_one_that_still_fails_keeps_its_row_with_the_current_reason(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    with max_depth(8):
        load_lines(settings, tmp_path, [NESTED])
    [reject_id] = [r["id"] for r in rows(engine, "SELECT id FROM drip._rejects")]
    # the nesting rule is fixed, but this retry allows smaller records than it is
    smaller = _retry(engine, ids=[reject_id], max_record_bytes=100)
    over = (
        f"record is {len(NESTED)} bytes, over the limit of 100 "
        "(raise --max-record-bytes / DRIP_LOADER_MAX_RECORD_BYTES to accept it)"
    )
    assert [(r.id, r.outcome, r.reason) for r in smaller.outcomes] == [
        (reject_id, "rejected", over)
    ]
    reject = get_reject(engine, reject_id, schema="drip")
    assert (reject.reason, reject.first_reason, reject.landed_at) == (over, DEEP, None)
    assert f"  first reason {DEEP}" in reject.lines()
    larger = _retry(engine, ids=[reject_id])
    assert [(r.outcome, r.reason) for r in larger.outcomes] == [("landed", None)]
    reject = get_reject(engine, reject_id, schema="drip")
    assert [(a.load_id, a.outcome, a.reason) for a in reject.retries] == [
        (smaller.load_id, "rejected", over),
        (larger.load_id, "landed", None),
    ]
    assert one(engine, "SELECT count(*) AS n FROM drip.email_delivered")["n"] == 1


def test_a_record_cut_at_the_size_limit_is_never_landed(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    load_lines(_settings(settings, max_record_bytes=LIMIT), tmp_path, spec6_lines())
    [cut] = [r.id for r in list_rejects(engine, schema="drip").rejects if r.size > LIMIT]
    before = snapshot(engine)
    report = _retry(engine, ids=[cut], max_record_bytes=10 * LIMIT)
    assert (report.read, report.cut, report.landed) == (0, 1, 0)
    assert [(r.id, r.outcome, r.reason) for r in report.outcomes] == [
        (
            cut,
            "cut",
            "it was over the size limit when it arrived and only its first 1,000 of 1,457 "
            "bytes are kept; load or send the original again (with a larger limit)",
        )
    ]
    assert snapshot(engine) == before
    assert one(engine, "SELECT count(*) AS n FROM drip._reject_retries")["n"] == 0


def test_unknown_ids_are_refused_before_anything_is_retried(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    with max_depth(8):
        load_lines(settings, tmp_path, [NESTED])
    [known] = [r["id"] for r in rows(engine, "SELECT id FROM drip._rejects")]
    before = snapshot(engine)
    with pytest.raises(RejectNotFound) as raised:
        _retry(engine, ids=[known, known + 7, known + 9])
    assert str(raised.value) == (
        f"no rejects with ids {known + 7}, {known + 9} in schema 'drip': "
        "`drip-loader rejects list` shows the ids"
    )
    assert snapshot(engine) == before


def test_a_dry_run_says_what_would_land_and_changes_nothing(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    with max_depth(8):
        load_lines(settings, tmp_path, [NESTED, b"[1]"])
    before = snapshot(engine)
    runs = one(engine, "SELECT count(*) AS n FROM drip._runs")["n"]
    report = _retry(engine, dry_run=True)
    assert (report.dry_run, report.read, report.landed, report.rejected) == (True, 2, 1, 1)
    # a retry of all rejects lists those that still fail (and counts those that land)
    assert [(r.outcome, r.reason) for r in report.outcomes] == [
        ("rejected", "not a JSON object (got an array)")
    ]
    assert snapshot(engine) == before
    assert one(engine, "SELECT count(*) AS n FROM drip._runs")["n"] == runs
    assert one(engine, "SELECT count(*) AS n FROM drip._reject_retries")["n"] == 0


def test_since_retries_only_the_newer_rejects(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    with max_depth(8):
        load_lines(settings, tmp_path, [NESTED, nested(case_bytes("email_bounced"))])
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE drip._rejects SET rejected_at = '2026-11-01' WHERE origin LIKE :o"),
            {"o": "%:1"},
        )

    report = _retry(engine, since=datetime(2026, 11, 2, tzinfo=UTC))
    assert (report.read, report.landed) == (1, 1)
    landed = rows(engine, "SELECT origin FROM drip._rejects WHERE landed_at IS NOT NULL")
    assert [r["origin"][-2:] for r in landed] == [":2"]
    assert report.selection == "rejects since 2026-11-02T00:00:00+00:00"
    assert list_rejects(engine, schema="drip").matching == 1


def _many(tmp_path: Path, settings: Settings, events: int) -> list[bytes]:
    """``events`` generated records, each nested too deep for the stricter rule, loaded
    under it: all rejected."""
    lines = [nested(record) for record in generate_events(events=events, seed=11)]
    with max_depth(8):
        report = load_lines(settings, tmp_path, lines, name="many.ndjson")
    assert report.rejected == events
    return lines


def test_a_batch_reads_bodies_up_to_its_byte_budget_and_the_next_takes_the_rest(
    settings: Settings, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _many(tmp_path, settings, 40)
    monkeypatch.setattr(retry_module, "BATCH_BYTES", 1)  # one body per transaction
    seen: list[int] = []

    class Progress:
        def start(self, description: str, total: int | None) -> None:
            seen.append(-1 if total is None else total)

        def advance(self, amount: int) -> None:
            seen.append(amount)

    report = _retry(engine, batch_size=25, progress=Progress())
    assert (report.read, report.landed + report.duplicates) == (40, 40)
    assert seen[:41] == [40, *([1] * 40)]  # the total first, then one per batch


def test_two_retries_at_once_land_each_event_once(
    settings: Settings, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = _many(tmp_path, settings, 600)
    # batches lock 25 rejects and read the bodies of about ten: the rest wait for the next
    monkeypatch.setattr(retry_module, "BATCH_BYTES", 10 * max(len(line) for line in lines))
    load_lines(settings, tmp_path, [b'{"n": %d}' % n for n in range(60)], name="bad.ndjson")
    reports: list[RetryReport] = []
    failures: list[BaseException] = []

    def retry() -> None:
        try:
            reports.append(_retry(engine, batch_size=25, keep_outcomes=False))
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=retry) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert all(r.read > 0 for r in reports)  # both took batches
    assert sum(r.landed + r.duplicates for r in reports) == 600
    # a reject one retry landed, the other never tried; one still failing may be tried by
    # both (the second had started before the first one's batch)
    tried = rows(
        engine,
        "SELECT outcome, count(*) AS rejects, min(n) AS least, max(n) AS most FROM ("
        "  SELECT r.id, min(t.outcome) AS outcome, count(t.load_id) AS n"
        "  FROM drip._rejects r LEFT JOIN drip._reject_retries t ON t.reject_id = r.id"
        "  GROUP BY r.id) per GROUP BY outcome ORDER BY outcome",
    )
    assert [(t["outcome"], t["rejects"], t["least"]) for t in tried] == [
        ("landed", 600, 1),
        ("rejected", 60, 1),
    ]
    assert tried[0]["most"] == 1 and tried[1]["most"] <= 2
    assert (
        one(engine, "SELECT count(*) AS n FROM drip._rejects WHERE landed_at IS NOT NULL")["n"]
        == 600
    )
    # each event once: the same warehouse as loading the records directly
    retried, direct = _loaded_directly(engine, settings, tmp_path, lines)
    # which copy of a retried event is kept depends on who lands first; the events do not
    assert {t: retried[t] for t in TABLES} == {t: direct[t] for t in TABLES}
    assert [r[0] for r in retried["_raw_events"]] == [r[0] for r in direct["_raw_events"]]
    assert sum(r.landed for r in reports) == len(direct["_raw_events"])


def test_a_retry_beside_a_load_and_the_webhook_lander_lands_each_event_once(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    lines = _many(tmp_path, settings, 600)
    path = write_ndjson(tmp_path / "again.ndjson", lines)
    failures: list[BaseException] = []

    def guarded(work: Any) -> Any:
        def run() -> None:
            try:
                work()
            except BaseException as exc:  # surfaced below
                failures.append(exc)

        return threading.Thread(target=run)

    reports: list[RetryReport] = []
    threads = [
        guarded(lambda: reports.append(_retry(engine, batch_size=50, keep_outcomes=False))),
        guarded(lambda: run_pipeline(_settings(settings, batch_size=50), [str(path)])),
        guarded(
            lambda: queue_records(
                engine,
                ((f"webhook:{n}", line, len(line)) for n, line in enumerate(lines[::-1])),
                load_id="serve",
            )
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    [report] = reports
    assert (report.read, report.rejected) == (600, 0)
    assert one(engine, "SELECT count(*) AS n FROM drip._rejects WHERE landed_at IS NULL")["n"] == 0
    run_pipeline(settings, [])  # transform what the webhook lander queued
    retried, direct = _loaded_directly(engine, settings, tmp_path, lines)
    assert {t: retried[t] for t in TABLES} == {t: direct[t] for t in TABLES}
    assert [r[0] for r in retried["_raw_events"]] == [r[0] for r in direct["_raw_events"]]
