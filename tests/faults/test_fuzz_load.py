"""Fuzzing `load`: whatever the bodies, no crash, no lost record, and the accounting holds."""

from __future__ import annotations

import itertools
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from loader.config import Settings
from loader.pipeline.run import run_pipeline
from tests.faults.strategies import record_line
from tests.support.warehouse import TABLES

_files = itertools.count()


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(lines=st.lists(record_line(), min_size=1, max_size=25))
def test_every_record_is_landed_once_a_duplicate_or_rejected(
    lines: list[bytes], settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    # A file that starts with gzip's magic bytes is read as gzip (detected by content, not
    # by name): a fuzzed first line that happens to start with them makes a corrupt gzip
    # file, which is a whole-file error by design (tests/pipeline/test_run.py covers it).
    assume(not lines[0].startswith(b"\x1f\x8b"))
    path = tmp_path / f"fuzz-{next(_files)}.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    nonblank = sum(1 for line in lines if line.strip())
    with engine.connect() as conn:
        rejects_before = conn.execute(sa.text("SELECT count(*) FROM drip._rejects")).scalar_one()

    report = run_pipeline(settings, [str(path)])

    assert report.read == nonblank == report.landed + report.duplicates + report.rejected
    with engine.connect() as conn:
        landed = conn.execute(
            sa.text(
                "SELECT count(*) FILTER (WHERE is_email), count(*) FROM drip._raw_events WHERE _load_id = :id"
            ),
            {"id": report.load_id},
        ).one()
        rejects = (
            conn.execute(sa.text("SELECT count(*) FROM drip._rejects")).scalar_one()
            - rejects_before
        )
        pending = conn.execute(sa.text("SELECT count(*) FROM drip._pending")).scalar_one()
        orphans = conn.execute(
            sa.text(
                "SELECT count(*) FROM drip._raw_events r LEFT JOIN drip.tracks t ON t.id = r._event_key "
                "WHERE r.is_email AND t.id IS NULL"
            )
        ).scalar_one()
    assert landed[1] == report.landed
    assert report.rows_added["tracks"] == landed[0]  # every landed email event has its tracks row
    assert sum(report.rows_added[t] for t in TABLES[1:]) == landed[0]
    assert rejects <= report.rejected  # stored once per (content, origin); never more than counted
    assert pending == 0 and orphans == 0
