"""serve's background workers: any exception is survived, retried, and shown by /healthz and /metrics.

The receiver runs in this process (Starlette's test client drives its ASGI app and
lifespan) on a real database; the fault is a bug injected into one step of a worker.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

with warnings.catch_warnings():  # starlette 1.x asks for httpx2 with httpx installed: same API
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from loader.config import Settings
from loader.domain.events import parse_record
from loader.pipeline import emit
from loader.serve import workers as background
from loader.serve.app import Receiver, ServeOptions, create_app
from loader.warehouse.partitions import month_of, partition_months
from tests.casefiles import case
from tests.support.segment_sink import SegmentSink

TOKEN = "test-token-Abc123_xyz-0123456789"
CLICK = case("email_link_clicked")
BUG = "a bug in this step"


def wait_until(check: Callable[[], bool], *, within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within} s")
        time.sleep(0.05)


def metric(client: TestClient, line_start: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric {line_start}")


def broken_until_fixed(real: Callable[..., Any]) -> tuple[Callable[..., Any], threading.Event]:
    """``real``, except that it raises a RuntimeError (not a LoaderError) until fixed."""
    fixed = threading.Event()

    def step(*args: Any, **kwargs: Any) -> Any:
        if not fixed.is_set():
            raise RuntimeError(BUG)
        return real(*args, **kwargs)

    return step, fixed


def receiver(engine: Engine, settings: Settings, **options: Any) -> Receiver:
    opts = ServeOptions(token=TOKEN, transform_interval=0.05, degraded_after=0.5, **options)
    return Receiver(engine, settings=settings, options=opts, load_id="background-test")


def tracks(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM drip.tracks")).scalar_one())


def test_a_transform_that_raises_a_bug_is_retried_reported_degraded_then_recovers(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    step, fixed = broken_until_fixed(background.transform_batch)
    monkeypatch.setattr(background, "transform_batch", step)
    with TestClient(create_app(receiver(engine, settings))) as client:
        assert client.get("/healthz").json() == {"status": "ok"}  # not failing for long yet
        assert client.post(f"/webhooks/drip/{TOKEN}", content=json.dumps(CLICK)).status_code == 200
        wait_until(lambda: client.get("/healthz").json()["status"] == "degraded", within=10)
        health = client.get("/healthz")
        assert health.status_code == 200  # the event is stored: Drip must keep sending
        assert "transform has failed for" in health.json()["reason"]
        # the error's type, not its message (which may name a host): that is in the log
        assert health.json()["reason"].endswith("error(s) so far), last: RuntimeError")
        assert BUG not in health.json()["reason"]
        assert metric(client, 'drip_loader_worker_errors_total{worker="transform"}') >= 2
        assert (
            metric(client, 'drip_loader_worker_last_success_timestamp_seconds{worker="transform"}')
            == 0
        )
        assert metric(client, 'drip_loader_worker_failing_seconds{worker="transform"}') > 0.5
        assert tracks(engine) == 0

        before_fix = time.time()
        fixed.set()
        wait_until(lambda: tracks(engine) == 1, within=10)
        wait_until(lambda: client.get("/healthz").json() == {"status": "ok"}, within=10)
        last = metric(
            client, 'drip_loader_worker_last_success_timestamp_seconds{worker="transform"}'
        )
        assert before_fix <= last <= time.time()
        assert metric(client, 'drip_loader_worker_failing_seconds{worker="transform"}') == 0


def test_forwarding_that_raises_a_bug_is_retried_until_the_event_reaches_segment(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    step, fixed = broken_until_fixed(emit.emit_events)
    monkeypatch.setattr(emit, "emit_events", step)
    with SegmentSink(write_key="wk-background-0123") as sink:
        forwarding = Settings(
            database_url=settings.database_url,
            home=settings.home,
            segment_write_key="wk-background-0123",
            segment_host=sink.url,
        )
        app = create_app(receiver(engine, forwarding, emit=True, emit_interval=0.05))
        with TestClient(app) as client:
            assert (
                client.post(f"/webhooks/drip/{TOKEN}", content=json.dumps(CLICK)).status_code == 200
            )
            wait_until(lambda: tracks(engine) == 1, within=10)
            wait_until(lambda: client.get("/healthz").json()["status"] == "degraded", within=10)
            reason = client.get("/healthz").json()["reason"]
            assert "emit has failed for" in reason and "transform" not in reason
            assert metric(client, 'drip_loader_worker_errors_total{worker="emit"}') >= 2
            assert sink.message_ids() == []

            fixed.set()
            wait_until(
                lambda: sink.message_ids() == [parse_record(json.dumps(CLICK).encode()).key],
                within=20,
            )
            wait_until(lambda: client.get("/healthz").json() == {"status": "ok"}, within=10)
            assert (
                metric(client, 'drip_loader_worker_last_success_timestamp_seconds{worker="emit"}')
                > 0
            )


def test_the_transform_makes_this_and_next_months_partitions_ahead(
    engine: Engine, settings: Settings
) -> None:
    this = month_of(datetime.now(UTC))
    following = month_of(this + timedelta(days=32))
    with TestClient(create_app(receiver(engine, settings))):
        wait_until(
            lambda: partition_months(engine, schema="drip")["tracks"] == [this, following],
            within=10,
        )
    assert all(m == [this, following] for m in partition_months(engine, schema="drip").values())
