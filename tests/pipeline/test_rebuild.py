"""``rebuild`` never deletes a row it cannot rebuild: months whose raw is archived, and
rows without raw, keep their rows; months whose raw is complete are emptied and mapped
again whole; nothing is queued for Segment again; a kill then a rerun ends like one run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loader.config import Settings
from loader.domain.sample import MEAN_GAP, generate_events
from loader.pipeline.emit import emit_events
from loader.pipeline.rebuild import rebuild_tables
from loader.pipeline.run import run_pipeline
from loader.pipeline.transform import run_transforms
from loader.warehouse.archive import archive_months
from tests.support.segment_sink import SegmentSink
from tests.support.warehouse import load_lines, queue_records, snapshot

from .test_emit import FAST, WRITE_KEY

START = datetime(2026, 7, 3, tzinfo=UTC)


def spread(events: int, seed: int, start: datetime = START, days: int = 110) -> list[bytes]:
    factor = timedelta(days=days) / (events * MEAN_GAP)
    return list(generate_events(events=events, seed=seed, start=start, spread=factor))


def tables(engine: Engine) -> dict[str, Any]:
    found: dict[str, Any] = dict(snapshot(engine))
    found.pop("_rejects")
    with engine.connect() as conn:
        found["subscribers"] = sorted(
            tuple(str(v) for v in r)
            for r in conn.execute(sa.text("SELECT * FROM drip.subscribers"))
        )
    return found


def break_the_mapping(engine: Engine) -> None:
    """Rows as a mapping bug would have written them: what a rebuild repairs."""
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE drip.email_opened SET email_subject = 'wrong'"))
        conn.execute(sa.text("UPDATE drip.tracks SET event_text = 'wrong'"))
        conn.execute(sa.text("UPDATE drip.subscribers SET status = 'wrong'"))


def scalar(engine: Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


def test_months_with_all_their_raw_are_emptied_and_mapped_again(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    lines = spread(4000, 3)
    load_lines(settings, tmp_path, lines)
    before = tables(engine)
    break_the_mapping(engine)

    report = rebuild_tables(engine, schema="drip", batch_size=700)

    assert [(f"{m.month:%Y-%m}", m.how, m.kept_without_raw) for m in report.months] == [
        ("2026-07", "emptied", 0),
        ("2026-08", "emptied", 0),
        ("2026-09", "emptied", 0),
        ("2026-10", "emptied", 0),
    ]
    assert report.events == scalar(engine, "SELECT count(*) FROM drip._raw_events")
    assert tables(engine) == before
    assert report.lines()[1].startswith("  2026-07  emptied ")
    assert not any(line.startswith("Kept ") for line in report.lines())


def test_archived_months_keep_their_rows_and_the_report_says_so(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    load_lines(settings, tmp_path, spread(4000, 5))
    archive_months(engine, schema="drip", before=date(2026, 9, 1), to=tmp_path / "archive")
    before = tables(engine)
    archived_rows = scalar(
        engine, "SELECT count(*) FROM drip.tracks WHERE timestamp < '2026-09-01T00:00:00Z'"
    )
    break_the_mapping(engine)
    with engine.connect() as conn:
        broken_old = sorted(
            tuple(str(v) for v in r)
            for r in conn.execute(
                sa.text("SELECT * FROM drip.tracks WHERE timestamp < '2026-09-01T00:00:00Z'")
            )
        )

    report = rebuild_tables(engine, schema="drip", batch_size=1000)

    months = {f"{m.month:%Y-%m}": m for m in report.months}
    assert (months["2026-07"].how, months["2026-08"].how) == ("no raw", "no raw")
    assert months["2026-07"].kept_without_raw + months["2026-08"].kept_without_raw == archived_rows
    assert (months["2026-09"].how, months["2026-10"].how) == ("emptied", "emptied")
    assert report.lines()[-1] == (
        f"Kept {archived_rows:,} rows whose raw events are not in the warehouse (archived, or "
        "loaded without raw), in 2026-07, 2026-08: they cannot be rebuilt; `drip-loader load` "
        "of the archive brings their raw back (then rebuild again)."
    )
    after = tables(engine)
    # the archived months' rows are kept as they were (the broken text too: no raw to fix it)
    with engine.connect() as conn:
        kept = sorted(
            tuple(str(v) for v in r)
            for r in conn.execute(
                sa.text("SELECT * FROM drip.tracks WHERE timestamp < '2026-09-01T00:00:00Z'")
            )
        )
    assert kept == broken_old
    recent = [r for r in after["tracks"] if r[5] >= "2026-09"]  # original_timestamp
    assert recent == [r for r in before["tracks"] if r[5] >= "2026-09"]

    # with the raw back, the next rebuild repairs them too
    run_pipeline(settings, [str(tmp_path / "archive")])
    again = rebuild_tables(engine, schema="drip", batch_size=1000)
    assert {m.how for m in again.months} == {"emptied"}
    assert {k: v for k, v in tables(engine).items() if k != "_raw_events"} == {
        k: v for k, v in before.items() if k != "_raw_events"
    }


def test_rows_without_raw_in_a_month_with_raw_are_kept_and_the_rest_rebuilt(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    load_lines(settings, tmp_path, spread(1500, 7, days=20))
    with engine.begin() as conn:  # a row that came without raw (an import)
        conn.execute(
            sa.text(
                "INSERT INTO drip.tracks (id, event, event_text, original_timestamp, timestamp, "
                "received_at, sent_at, anonymous_id) VALUES ('imported-1', 'email_opened', "
                "'Email Opened', '2026-07-10T00:00:00Z', '2026-07-10T00:00:00Z', now(), now(), "
                "'a@b.c')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO drip.email_opened (id, event, event_text, original_timestamp, "
                "timestamp, received_at, sent_at, anonymous_id, email_subject) VALUES "
                "('imported-1', 'email_opened', 'Email Opened', '2026-07-10T00:00:00Z', "
                "'2026-07-10T00:00:00Z', now(), now(), 'a@b.c', 'kept')"
            )
        )
    before = tables(engine)
    break_the_mapping(engine)

    report = rebuild_tables(engine, schema="drip", batch_size=400)

    assert [(f"{m.month:%Y-%m}", m.how, m.kept_without_raw) for m in report.months] == [
        ("2026-07", "by key", 1)
    ]
    got = tables(engine)
    imported = [r for r in got["tracks"] if r[0] == "imported-1"]
    assert [r[4] for r in imported] == ["wrong"]  # kept as it was: no raw to rebuild it from
    for table in ("tracks", "email_opened"):
        assert [r for r in got[table] if r[0] != "imported-1"] == [
            r for r in before[table] if r[0] != "imported-1"
        ]
    assert got["subscribers"] == before["subscribers"]
    assert (
        scalar(engine, "SELECT email_subject FROM drip.email_opened WHERE id = 'imported-1'")
        == "wrong"
    )


def test_a_rebuild_never_sends_an_event_to_segment_again(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    load_lines(settings, tmp_path, spread(800, 11, days=20))
    with SegmentSink(write_key=WRITE_KEY) as sink:

        def emit(**options: Any) -> Any:
            return emit_events(
                engine, schema="drip", write_key=WRITE_KEY, host=sink.url, policy=FAST, **options
            )

        first = emit(outbox_retention=timedelta(0))  # every sent row deleted at once
        assert first.sent > 0 and first.pruned == first.sent
        rebuild_tables(engine, schema="drip", batch_size=500)
        again = emit()

    assert scalar(engine, "SELECT count(*) FROM drip._outbox") == 0
    assert again.sent == 0
    assert max(Counter(sink.message_ids()).values()) == 1  # each event once


def test_events_still_queued_are_left_to_the_transform(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    load_lines(settings, tmp_path, spread(600, 13, days=20))
    late = spread(300, 14, datetime(2026, 7, 8, tzinfo=UTC), days=5)
    queue_records(engine, ((f"w:{n}", b, len(b)) for n, b in enumerate(late)), load_id="w")
    pending = scalar(engine, "SELECT count(*) FROM drip._pending")

    report = rebuild_tables(engine, schema="drip", batch_size=200)

    assert scalar(engine, "SELECT count(*) FROM drip._pending") == pending > 0
    assert report.events == scalar(engine, "SELECT count(*) FROM drip._raw_events") - pending
    run_transforms(engine, schema="drip", batch_size=1000)
    assert scalar(engine, "SELECT count(*) FROM drip.tracks") == scalar(
        engine,
        "SELECT count(*) FROM drip._raw_events WHERE is_email",
    )


_REBUILD = """
import sys
from loader.pipeline.rebuild import rebuild_tables
from loader.warehouse.db import make_engine
rebuild_tables(make_engine(sys.argv[1]), schema="drip", batch_size=300)
"""


def test_killed_mid_rebuild_a_rerun_ends_like_one_run(
    settings: Settings, engine: Engine, tmp_path: Path, db_url: str
) -> None:
    load_lines(settings, tmp_path, spread(20_000, 17))
    with engine.begin() as conn:  # one month keeps a row without raw: rebuilt by key
        conn.execute(
            sa.text(
                "DELETE FROM drip._raw_events WHERE (occurred_at, _event_key) IN (SELECT "
                "occurred_at, _event_key FROM drip._raw_events WHERE occurred_at < "
                "'2026-08-01T00:00:00Z' AND is_email ORDER BY occurred_at LIMIT 1)"
            )
        )
    before = tables(engine)
    total = scalar(engine, "SELECT count(*) FROM drip.tracks")
    kills = 0
    for fewer in (1, 2000, 5000):
        child = subprocess.Popen([sys.executable, "-c", _REBUILD, db_url])
        deadline = time.monotonic() + 120
        while child.poll() is None and time.monotonic() < deadline:
            rows = scalar(engine, "SELECT count(*) FROM drip.tracks")
            if total - rows >= fewer:  # a month emptied and partly mapped again
                os.kill(child.pid, signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.002)
        child.wait()
    subprocess.run([sys.executable, "-c", _REBUILD, db_url], check=True)

    assert kills >= 2
    assert tables(engine) == before
