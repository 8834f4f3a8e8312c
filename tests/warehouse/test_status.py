"""``status``: run lines that say the command, carry their zone and stay aligned; rejects
that point to where they can be read; a running serve's counts live."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loader.config import Settings
from loader.errors import EmitError
from loader.pipeline.retry import retry_rejects
from loader.pipeline.run import forward
from loader.warehouse.run_table import duration, run_lines
from loader.warehouse.status import warehouse_status
from tests.casefiles import case_bytes
from tests.support.rejects import max_depth, nested
from tests.support.segment_sink import SegmentSink
from tests.support.serve import ServeProcess
from tests.support.warehouse import load_lines

WRITE_KEY = "wk_status_0123456789"
AT = datetime(2026, 12, 5, 9, 12, 3, tzinfo=UTC)


def _run(engine: Engine, load_id: str, command: str, status: str, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO drip._runs (load_id, command, status, started_at, finished_at, "
                "counts, error) VALUES (:load_id, :command, :status, :started_at, "
                ":finished_at, CAST(:counts AS jsonb), :error)"
            ),
            {
                "load_id": load_id,
                "command": command,
                "status": status,
                "started_at": values["started_at"],
                "finished_at": values.get("finished_at"),
                "counts": values.get("counts"),
                "error": values.get("error"),
            },
        )


def _runs_part(engine: Engine) -> list[str]:
    lines = warehouse_status(engine, schema="drip").lines()
    runs = lines[lines.index("Last runs:") + 1 :]
    # the storage section follows the runs
    return next((runs[:i] for i, line in enumerate(runs) if line.startswith("Storage:")), runs)


def test_run_lines_name_the_command_carry_utc_and_stay_aligned(engine: Engine) -> None:
    _run(
        engine,
        "a",
        "load",
        "interrupted",
        started_at=AT,
        finished_at=AT + timedelta(seconds=4.2),
        counts='{"read": 50000, "landed": 49990, "duplicates": 0, "rejected": 10}',
        error="interrupted by SIGINT (Ctrl-C)",
    )
    _run(
        engine,
        "b",
        "emit",
        "completed",
        started_at=AT + timedelta(minutes=5),
        finished_at=AT + timedelta(minutes=17, seconds=30),
        counts='{"sent": 1200, "failed": 3, "deferred": 0}',
    )
    _run(
        engine,
        "c",
        "drip sync",
        "completed",
        started_at=AT + timedelta(hours=1),
        finished_at=AT + timedelta(hours=3, minutes=5),
        counts='{"tables": {"drip_tags": {"seen": 7, "added": 2, "deleted": 1}, '
        '"drip_campaigns": {"seen": 3, "added": 0, "deleted": 0}}, "requests": 4}',
    )
    _run(engine, "d", "serve", "running", started_at=AT + timedelta(days=1))  # its process is gone
    assert _runs_part(engine) == [
        "  started                  command    status                            took  what it did",
        "  2026-12-06 09:12:03 UTC  serve      not running (process gone)           -  "
        "no counts recorded",
        "  2026-12-05 10:12:03 UTC  drip sync  completed                   2 h 05 min  "
        "seen 10, added 2, deleted 1 in 2 tables (4 requests)",
        "  2026-12-05 09:17:03 UTC  emit       completed                       12 min  "
        "sent 1,200, failed 3",
        "  2026-12-05 09:12:03 UTC  load       interrupted                      4.2 s  "
        "read 50,000, landed 49,990, duplicates 0, rejected 10",
        "      error: interrupted by SIGINT (Ctrl-C)",
    ]


@dataclass(frozen=True)
class _Facts:
    command: str
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    counts: dict[str, Any] | None = None
    error: str | None = None


def test_a_running_run_shows_its_counts_so_far_and_how_long_it_has_run() -> None:
    running = _Facts("serve", "running", AT, counts={"read": 7, "landed": 7, "rejected": 0})
    assert run_lines([running], now=AT + timedelta(minutes=3, seconds=1)) == [
        "  started                  command  status    took  what it did",
        "  2026-12-05 09:12:03 UTC  serve    running  3 min  "
        "read 7, landed 7, duplicates -, rejected 0 (live)",
    ]
    assert run_lines([], now=AT) == ["  none yet"]
    assert [duration(s) for s in (0.04, 9.96, 42, 3599, 3600, 90_000)] == [
        "0.0 s",
        "10.0 s",
        "42 s",
        "59 min",
        "1 h 00 min",
        "1 d 01 h",
    ]


def test_times_are_shown_in_utc_whatever_the_session_zone(engine: Engine) -> None:
    with engine.begin() as conn:
        name = conn.execute(sa.text("SELECT current_database()")).scalar_one()
        conn.execute(sa.text(f"ALTER DATABASE \"{name}\" SET timezone TO 'America/Los_Angeles'"))
    engine.dispose()
    _run(engine, "a", "load", "completed", started_at=AT, finished_at=AT, counts="{}")
    assert _runs_part(engine)[1].startswith("  2026-12-05 09:12:03 UTC  load ")


def test_rejects_point_to_rejects_list_and_leave_once_a_retry_landed_them(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    load_lines(settings, tmp_path, [case_bytes("email_opened")])
    assert (
        "  rejects                            0" in warehouse_status(engine, schema="drip").lines()
    )
    with max_depth(8):
        load_lines(settings, tmp_path, [nested(case_bytes("email_bounced")), b"{"], name="b.json")
    status = warehouse_status(engine, schema="drip")
    assert (status.rejects, status.rejects_landed) == (2, 0)
    assert (
        "  rejects                            2  (see `drip-loader rejects list`)" in status.lines()
    )
    report = retry_rejects(
        engine, schema="drip", max_record_bytes=1 << 20, transform_batch_size=100
    )
    status = warehouse_status(engine, schema="drip")
    assert (status.rejects, status.rejects_landed) == (1, 1)
    assert status.as_dict()["rejects_landed"] == 1
    assert status.last_runs[0].load_id == report.load_id
    line = _runs_part(engine)[1]
    assert "  rejects retry  completed  " in line
    assert line.endswith("retried 2, landed 1, duplicates 0, still rejected 1")


def test_emit_records_its_run_however_it_ends(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    load_lines(settings, tmp_path, [case_bytes("email_opened"), case_bytes("email_bounced")])
    with SegmentSink(write_key=WRITE_KEY) as sink:
        with pytest.raises(EmitError):
            forward(engine, schema="drip", write_key="wrong", host=sink.url, batch_size=100)
        sent = forward(engine, schema="drip", write_key=WRITE_KEY, host=sink.url, batch_size=100)
    assert sent.sent == 2
    completed, failed = warehouse_status(engine, schema="drip").last_runs[:2]
    assert (completed.command, completed.status) == ("emit", "completed")
    assert completed.counts is not None and completed.counts["sent"] == 2
    assert (failed.command, failed.status) == ("emit", "failed")
    assert failed.error is not None and failed.error.startswith("Segment refused the write key")
    lines = _runs_part(engine)
    assert lines[1].endswith("sent 2, failed 0")
    assert lines[2].endswith("sent 0, failed 0, deferred 2") and lines[3].startswith(
        "      error: Segment"
    )


def test_a_running_serve_shows_its_counts_within_a_few_seconds(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    with ServeProcess(db_url, tmp_path / "serve.log") as serve:
        for name in ("email_opened", "email_bounced", "email_delivered"):
            assert serve.http.post(serve.webhook, content=case_bytes(name)).status_code == 200
        assert serve.http.post(serve.webhook, content=b"{").status_code == 400
        deadline = time.monotonic() + 15
        while True:
            [run] = warehouse_status(engine, schema="drip").last_runs
            if (run.counts or {}).get("read") == 4 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert (run.command, run.status) == ("serve", "running")
        assert run.counts is not None
        assert (run.counts["read"], run.counts["landed"], run.counts["rejected"]) == (3 + 1, 3, 1)
        assert _runs_part(engine)[1].endswith("read 4, landed 3, duplicates 0, rejected 1 (live)")
