"""Forwarding keeps only what it still needs: sent rows go after a window, and forwarding
can be turned off and on again without losing or double-sending an event.

Real Postgres and a real local ``/v1/batch`` server (tests/support/segment_sink.py).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loader.config import Settings
from loader.counts import Counts
from loader.domain.sample import generate_events
from loader.errors import EmitError, ForwardingOff
from loader.pipeline.emit import disable_forwarding, emit_events, enable_forwarding
from loader.pipeline.land import land_records
from loader.pipeline.run import run_pipeline
from loader.pipeline.transform import run_transforms
from loader.serve.workers import EmitJob
from loader.warehouse import migrate
from loader.warehouse.db import set_search_path
from loader.warehouse.retention import prune_outbox
from loader.warehouse.status import warehouse_status
from tests.support.segment_sink import SegmentSink
from tests.support.warehouse import queue_records, write_ndjson

from .test_emit import FAST, WRITE_KEY, land_sample, outbox


@pytest.fixture
def sink() -> Any:
    with SegmentSink(write_key=WRITE_KEY) as server:
        yield server


def emit(engine: Engine, sink: SegmentSink, **options: Any) -> Counts:
    options.setdefault("policy", FAST)
    return emit_events(engine, schema="drip", write_key=WRITE_KEY, host=sink.url, **options)


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def tracks_ids(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT id FROM drip.tracks")).scalars())


def age_sent_rows(engine: Engine, days: int, *, where: str = "true") -> int:
    """Pretend Segment accepted some sent rows ``days`` ago."""
    with engine.begin() as conn:
        return conn.execute(
            sa.text(
                f"UPDATE drip._outbox SET sent_at = sent_at - make_interval(days => :days) "
                f"WHERE status = 'sent' AND {where}"
            ),
            {"days": days},
        ).rowcount


def prune_everything_sent(engine: Engine) -> int:
    with engine.connect() as conn:
        set_search_path(conn, "drip")
        now = conn.execute(sa.text("SELECT now()")).scalar_one()
        conn.commit()
        return prune_outbox(conn, before=now)


def land_more(settings: Settings, tmp_path: Path, events: int, seed: int) -> set[str]:
    before = tracks_ids(make_engine_for(settings))
    path = write_ndjson(tmp_path / f"more-{seed}.ndjson", generate_events(events=events, seed=seed))
    run_pipeline(settings, [str(path)])
    return tracks_ids(make_engine_for(settings)) - before


def make_engine_for(settings: Settings) -> Engine:
    from loader.warehouse.db import make_engine

    return make_engine(settings.database_url or "", null_pool=True)


def test_forwarding_deletes_the_rows_segment_accepted_before_the_window(
    settings, engine, tmp_path, sink
):
    ids = land_sample(settings, tmp_path, 1200)
    first = emit(engine, sink)
    assert first.sent == len(ids) and first.pruned == 0  # all sent just now: all kept
    old = age_sent_rows(engine, 8, where="id < 'drip-8'")  # about half of them
    pending = land_more(settings, tmp_path, 300, seed=11)

    with SegmentSink(write_key=WRITE_KEY) as down:
        down.plan(*[503] * 10)  # nothing of the new ones gets through
        with pytest.raises(EmitError) as failed:
            emit(engine, down)
    again = emit(engine, sink)

    assert 0 < old < len(ids)
    assert failed.value.report.pruned == old  # a run that could not send prunes too
    assert (again.sent, again.pruned) == (len(pending), 0)
    states = Counter(status for status, _, _ in outbox(engine).values())
    assert states == {"sent": len(ids) - old + len(pending)}
    assert scalar(engine, "SELECT pruned_sent FROM drip._forwarding") == old


def test_pruning_goes_in_batches_of_its_own_transactions(settings, engine, tmp_path, sink):
    ids = land_sample(settings, tmp_path, 900)
    emit(engine, sink)
    age_sent_rows(engine, 30)
    batches: list[int] = []

    with engine.connect() as conn:
        set_search_path(conn, "drip")
        before = conn.execute(sa.text("SELECT now() - interval '7 days'")).scalar_one()
        conn.commit()
        dry = prune_outbox(conn, before=before, dry_run=True)
        deleted = prune_outbox(conn, before=before, limit=100, on_batch=batches.append)

    assert dry == deleted == len(ids)
    assert batches == [100] * (len(ids) // 100) + ([len(ids) % 100] if len(ids) % 100 else [])
    assert outbox(engine) == {}


def test_the_window_of_the_settings_reaches_load_with_emit(tmp_path, sink, db_url, engine):
    settings = Settings(
        database_url=db_url,
        home=tmp_path / "home",
        segment_write_key=WRITE_KEY,
        segment_host=sink.url,
        outbox_retention=timedelta(0),
    )
    path = write_ndjson(tmp_path / "a.ndjson", generate_events(events=400, seed=2))

    report = run_pipeline(settings, [str(path)], emit=True)

    assert report.sent > 0 and report.pruned == report.sent  # a window of 0 keeps nothing
    assert outbox(engine) == {}
    assert run_pipeline(settings, [str(path)], emit=True).sent == 0  # and sends nothing twice


def test_off_before_segment_confirmed_anything_drops_the_queue_and_the_next_emit_sends_all(
    settings, engine, tmp_path, sink
):
    # The wrong-key case: one emit turned forwarding on and queued every event.
    ids = land_sample(settings, tmp_path, 600)
    with SegmentSink(write_key="another-key-entirely") as wrong:
        with pytest.raises(EmitError, match="refused the write key"):
            emit(engine, wrong)
    assert len(outbox(engine)) == len(ids)

    off = disable_forwarding(engine, schema="drip")
    later = land_more(settings, tmp_path, 200, seed=7)

    assert (off.off_since, off.dropped, off.pending) == (None, len(ids), 0)
    assert off.lines() == [
        f"Forwarding to Segment is off. Segment had not confirmed any event, so the {len(ids):,} "
        "queued event(s) were dropped; the next `drip-loader emit` turns forwarding on and "
        "queues the whole warehouse again."
    ]
    assert outbox(engine) == {}  # nothing queued while off, nothing kept
    assert warehouse_status(engine, schema="drip").as_dict()["segment"]["on"] is False
    report = emit(engine, sink)  # a plain emit: as the very first one
    assert report.queued == len(ids | later) == report.sent
    assert Counter(sink.message_ids()) == Counter(ids | later)


def test_off_keeps_what_segment_has_not_confirmed_and_on_sends_it_once(
    settings, engine, tmp_path, sink
):
    sent_before = land_sample(settings, tmp_path, 500)
    emit(engine, sink)
    queued_before = land_more(settings, tmp_path, 300, seed=21)  # queued, not sent

    off = disable_forwarding(engine, schema="drip")
    received_while_off = land_more(settings, tmp_path, 300, seed=22)
    with pytest.raises(ForwardingOff, match=r"emit --on"):
        emit(engine, sink)
    # retention goes on while off: every sent row is deleted
    assert prune_everything_sent(engine) == len(sent_before)
    again = disable_forwarding(engine, schema="drip")
    on = emit(engine, sink, turn_on=True)

    assert off.off_since is not None and (off.dropped, off.pending, off.failed) == (
        0,
        len(queued_before),
        0,
    )
    assert off.lines()[1] == (
        f"  {len(queued_before):,} event(s) stay queued and 0 failed one(s) are kept: "
        "Segment has not confirmed them."
    )
    assert again.already_off and again.off_since == off.off_since
    assert on.queued == len(received_while_off)
    assert on.sent == len(queued_before | received_while_off)
    # every event exactly once over all runs; none of the pruned ones went twice
    assert Counter(sink.message_ids()) == Counter(sent_before | queued_before | received_while_off)
    assert warehouse_status(engine, schema="drip").as_dict()["segment"]["on"] is True


def test_events_received_before_the_off_are_queued_when_transformed_after_it(
    settings, engine, tmp_path, sink
):
    land_sample(settings, tmp_path, 50)
    emit(engine, sink)
    lines = list(generate_events(events=200, seed=31))
    landed = queue_records(
        engine, ((f"w:{n}", b, len(b)) for n, b in enumerate(lines)), load_id="w"
    )
    assert landed.landed > 0

    disable_forwarding(engine, schema="drip")
    run_transforms(engine, schema="drip", batch_size=1000)  # mapped while off
    new = tracks_ids(engine) - set(sink.message_ids())

    assert set(outbox(engine)) >= new  # received before the off: queued by the transform
    emit(engine, sink, turn_on=True)
    assert Counter(sink.message_ids()) == Counter(tracks_ids(engine))


def test_off_and_on_in_the_middle_of_a_load_lose_and_repeat_nothing(engine, sink):
    # Chunks commit before, during and after the off and the on, with retention deleting
    # every sent row in between: at the end Segment has each event of tracks exactly once.
    bodies = list(generate_events(events=12_000, seed=41))
    records = [(f"big:{n}", b, len(b)) for n, b in enumerate(bodies)]
    failures: list[BaseException] = []
    with engine.connect() as conn:
        set_search_path(conn, "drip")
        conn.commit()
        with conn.begin():
            enable_forwarding(conn)

    def load() -> None:
        try:
            land_records(
                engine, records, schema="drip", load_id="big", batch_size=200,
                max_record_bytes=1 << 20, on_chunk=lambda _: time.sleep(0.05),
            )  # fmt: skip
        except BaseException as exc:
            failures.append(exc)

    def tracks() -> int:
        return int(scalar(engine, "SELECT count(*) FROM drip.tracks"))

    thread = threading.Thread(target=load)
    thread.start()
    marks = []
    for step in ("emit", "off", "prune", "on"):
        mark = tracks()
        while tracks() < mark + 1500 and thread.is_alive():
            time.sleep(0.005)
        marks.append(tracks())
        if step == "emit":
            emit(engine, sink, outbox_retention=timedelta(days=1))
        elif step == "off":
            disable_forwarding(engine, schema="drip")
        elif step == "prune":
            prune_everything_sent(engine)
        else:
            emit(engine, sink, turn_on=True, outbox_retention=timedelta(0))
    thread.join(timeout=300)
    emit(engine, sink, outbox_retention=timedelta(0))

    assert not failures
    assert marks == sorted(marks) and marks[-1] < len(tracks_ids(engine))  # all mid-load
    assert scalar(engine, "SELECT pruned_sent FROM drip._forwarding") > 0
    assert Counter(sink.message_ids()) == Counter(tracks_ids(engine))


def test_serve_emit_worker_idles_while_forwarding_is_off(settings, engine, tmp_path, sink, caplog):
    land_sample(settings, tmp_path, 100)
    emit(engine, sink)
    land_more(settings, tmp_path, 50, seed=5)
    disable_forwarding(engine, schema="drip")
    job = EmitJob(engine, schema="drip", write_key=WRITE_KEY, host=sink.url)
    sent = len(sink.message_ids())

    assert job.step() is False and job.step() is False  # no failure: not degraded
    assert len(sink.message_ids()) == sent
    assert [r.getMessage()[:40] for r in caplog.records if r.name == "loader.serve.workers"] == [
        "not forwarding: forwarding to Segment is"
    ]  # said once


def test_load_with_emit_while_off_loads_and_says_why_nothing_was_sent(
    tmp_path, sink, db_url, engine
):
    settings = Settings(
        database_url=db_url, home=tmp_path / "h", segment_write_key=WRITE_KEY, segment_host=sink.url
    )
    first = write_ndjson(tmp_path / "a.ndjson", generate_events(events=100, seed=1))
    run_pipeline(settings, [str(first)], emit=True)
    disable_forwarding(engine, schema="drip")
    said: list[str] = []
    second = write_ndjson(tmp_path / "b.ndjson", generate_events(events=100, seed=2))

    report = run_pipeline(settings, [str(second)], emit=True, announce=said.append)

    assert report.landed > 0 and report.forwarding is False
    assert len(said) == 1 and said[0].startswith(
        "Not forwarded: forwarding to Segment is off since "
    )


def test_a_downgrade_queues_what_was_received_while_off(settings, engine, tmp_path, sink):
    land_sample(settings, tmp_path, 100)
    emit(engine, sink)
    disable_forwarding(engine, schema="drip")
    while_off = land_more(settings, tmp_path, 100, seed=3)
    assert not while_off & set(outbox(engine))

    migrate.downgrade(engine, schema="drip", revision="0007")

    assert while_off <= {i for i, (status, _, _) in outbox(engine).items() if status == "pending"}
    migrate.upgrade(engine, schema="drip")


def test_status_says_forwarding_is_off_after_emit_off(settings, engine, tmp_path, sink):
    land_sample(settings, tmp_path, 50)
    emit(engine, sink)
    assert warehouse_status(engine, schema="drip").as_dict()["segment"]["on"] is True

    disable_forwarding(engine, schema="drip")

    assert warehouse_status(engine, schema="drip").as_dict()["segment"]["on"] is False
