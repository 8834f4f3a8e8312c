"""The ``_runs`` ledger: every run ends recorded, however it ends; a run's lock says it is alive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loader.config import Settings
from loader.domain.sample import generate_events
from loader.errors import DatabaseError, StepFailed
from loader.pipeline import run as pipeline
from loader.warehouse.runs import LOCK_CLASS, is_alive, start_run
from loader.warehouse.status import GONE, warehouse_status
from tests.support.warehouse import load_lines


@pytest.mark.parametrize(
    ("raised", "caught", "status", "error"),
    [
        (
            RuntimeError("a bug in the transform"),
            RuntimeError,
            "interrupted",
            "stopped by an unexpected error: RuntimeError: a bug in the transform",
        ),
        (DatabaseError("the server refused"), StepFailed, "failed", "transform failed (run "),
    ],
    ids=["unexpected exception", "loader error"],
)
def test_a_load_that_stops_on_an_exception_is_recorded_with_it(
    settings: Settings,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    raised: Exception,
    caught: type[Exception],
    status: str,
    error: str,
) -> None:
    def transform(*args: Any, **kwargs: Any) -> None:
        raise raised

    monkeypatch.setattr(pipeline, "run_transforms", transform)
    with pytest.raises(caught):
        load_lines(settings, tmp_path, generate_events(events=20, seed=3))
    [run] = warehouse_status(engine, schema="drip").last_runs
    assert run.status == status
    assert run.error is not None
    assert run.error.startswith(error) and str(raised) in run.error
    assert run.counts is not None and run.counts["read"] == 20  # what it did before the exception


def test_a_run_is_alive_while_its_session_holds_the_lock_and_gone_after(engine: Engine) -> None:
    run = start_run(engine, schema="drip", load_id="r1", command="load", sources=None)
    with engine.connect() as conn:
        assert is_alive(conn, "r1")
        assert not is_alive(conn, "another-run")
    assert warehouse_status(engine, schema="drip").last_runs[0].status == "running"
    run._conn.invalidate()  # the process dies without a word: its session ends
    assert warehouse_status(engine, schema="drip").last_runs[0].status == GONE
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT status FROM drip._runs")).scalar_one() == "running"


def _end_sessions_of(engine: Engine, load_id: str) -> None:
    """End the session holding run ``load_id``'s lock, as a database restart would."""
    with engine.connect() as conn:
        ended = conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND classid = :class AND objid = hashtext(:load_id)::oid"
            ),
            {"class": LOCK_CLASS, "load_id": load_id},
        ).all()
        conn.commit()
    assert ended == [(True,)]


def test_a_run_whose_session_was_lost_takes_its_lock_again_and_records_its_end(
    engine: Engine,
) -> None:
    run = start_run(engine, schema="drip", load_id="r2", command="serve", sources=None)
    _end_sessions_of(engine, "r2")
    assert warehouse_status(engine, schema="drip").last_runs[0].status == GONE
    run.hold()
    assert warehouse_status(engine, schema="drip").last_runs[0].status == "running"
    run.hold()  # a live session: nothing to do
    _end_sessions_of(engine, "r2")
    run.finish({"read": 3, "landed": 3})  # on a new session
    [row] = warehouse_status(engine, schema="drip").last_runs
    assert (row.status, row.counts, row.error) == (
        "completed",
        {"read": 3, "landed": 3},
        None,
    )
