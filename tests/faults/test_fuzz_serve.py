"""Fuzzing `serve`: hostile bodies over real HTTP never crash it, never lose an answered event."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loader.domain.events import BadRecord, parse_record
from loader.warehouse.db import make_engine
from tests.conftest import TEMPLATE, _new_database
from tests.faults.strategies import record_line
from tests.support.serve import ServeProcess


@pytest.fixture(scope="module")
def receiver(
    pg: dict[str, object], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServeProcess, sa.Engine]]:
    for url in _new_database(pg, TEMPLATE):
        engine = make_engine(url)
        with ServeProcess(url, tmp_path_factory.mktemp("fuzz-serve") / "serve.log") as server:
            server.wait_healthy()
            yield server, engine
            assert server.stop() == 0, server.output()
        engine.dispose()


def _expected(body: bytes) -> tuple[int, set[str]]:
    """What the receiver must answer for ``body``, and the event keys it must have stored."""
    stripped = body.strip()
    if not stripped:
        return 400, set()
    elements: list[bytes]
    if stripped.startswith(b"["):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            return 400, set()
        elements = (
            [json.dumps(e).encode() for e in parsed] if isinstance(parsed, list) else [stripped]
        )
        if not elements:
            return 200, set()
    else:
        elements = [stripped]
    keys: set[str] = set()
    bad = False
    for element in elements:
        try:
            keys.add(parse_record(element).key)
        except BadRecord:
            bad = True
    return (400 if bad else 200), keys


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(bodies=st.lists(record_line(), min_size=1, max_size=8))
def test_every_answer_matches_what_was_stored(
    receiver: tuple[ServeProcess, sa.Engine], bodies: list[bytes]
) -> None:
    server, engine = receiver
    for body in bodies:
        status, keys = _expected(body)
        answer = server.post(body)
        assert answer.status_code == status, (answer.status_code, answer.text, body[:200])
        if keys:
            with engine.connect() as conn:
                stored = conn.execute(
                    sa.text("SELECT count(*) FROM drip._raw_events WHERE _event_key = ANY(:keys)"),
                    {"keys": list(keys)},
                ).scalar_one()
            assert stored == len(keys)  # answered => durable, every good element
    assert server.http.get("/healthz").status_code == 200
