"""The ``_runs`` ledger: every run ends recorded, however it ends; a run's lock says it is alive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loader import pipeline
from loader.config import Settings
from loader.errors import StepFailed
from loader.runs import is_alive, start_run
from loader.sample import generate_events
from loader.status import GONE, warehouse_status
from tests.support.warehouse import load_lines


def test_a_load_stopped_by_an_unexpected_exception_is_recorded_interrupted_with_it(
    settings: Settings, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug in the transform")

    monkeypatch.setattr(pipeline, "run_transforms", bug)
    with pytest.raises(RuntimeError):
        load_lines(settings, tmp_path, generate_events(events=20, seed=3))
    [run] = warehouse_status(engine, schema="drip")["last_runs"]
    assert run["status"] == "interrupted"
    assert run["error"] == "stopped by an unexpected error: RuntimeError: a bug in the transform"
    assert run["counts"]["read"] == 20  # what it did before the exception


def test_a_failed_load_is_recorded_failed_with_its_step(
    settings: Settings, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loader.errors import DatabaseError

    def refused(*args: Any, **kwargs: Any) -> None:
        raise DatabaseError("database error: the server refused")

    monkeypatch.setattr(pipeline, "run_transforms", refused)
    with pytest.raises(StepFailed):
        load_lines(settings, tmp_path, generate_events(events=5, seed=3))
    [run] = warehouse_status(engine, schema="drip")["last_runs"]
    assert run["status"] == "failed"
    assert "transform failed" in run["error"] and "the server refused" in run["error"]


def test_a_run_is_alive_while_its_session_holds_the_lock_and_gone_after(engine: Engine) -> None:
    run = start_run(engine, schema="drip", load_id="r1", command="load", sources=None)
    with engine.connect() as conn:
        assert is_alive(conn, "r1")
        assert not is_alive(conn, "another-run")
    assert warehouse_status(engine, schema="drip")["last_runs"][0]["status"] == "running"
    run._conn.close()  # the process dies without a word: its session ends
    assert warehouse_status(engine, schema="drip")["last_runs"][0]["status"] == GONE
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT status FROM drip._runs")).scalar_one() == "running"
