"""``drip-loader archive``: raw months go to checked gzip NDJSON files, the tables keep their
rows, a load of the files brings the raw back, and a kill at any point then a rerun ends
like one run."""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loader.config import Settings
from loader.domain.sample import MEAN_GAP, generate_events
from loader.errors import ConfigError, LoaderError
from loader.pipeline.run import run_pipeline
from loader.warehouse.archive import archive_months
from loader.warehouse.storage import storage_summary
from tests.support.warehouse import TABLES, load_lines, queue_records, snapshot, write_ndjson

START = datetime(2026, 7, 3, tzinfo=UTC)
"""The data spans July to October 2026 (the warehouse's clock is later: every month is over)."""


def spread(events: int, seed: int, start: datetime = START, days: int = 110) -> list[bytes]:
    factor = timedelta(days=days) / (events * MEAN_GAP)
    return list(generate_events(events=events, seed=seed, start=start, spread=factor))


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def raw_per_month(engine: Engine, schema: str = "drip") -> dict[str, int]:
    with engine.connect() as conn:
        found = conn.execute(
            sa.text(
                "SELECT to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM'), count(*) "
                f"FROM {schema}._raw_events GROUP BY 1"
            )
        ).all()
    return dict(found)


def raw_partitions(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(
                sa.text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'drip._raw_events'::regclass"
                )
            ).scalars()
        )


def tables(engine: Engine, schema: str = "drip") -> dict[str, list[tuple[Any, ...]]]:
    """Every row of tracks, the email collections, subscribers and the outbox (minus the
    times of landing and writing), sorted."""
    found = {k: v for k, v in snapshot(engine, schema).items() if k in TABLES}
    with engine.connect() as conn:
        for table, columns in (
            ("subscribers", "*"),
            ("_outbox", "id, timestamp, status, attempts, last_error, queued_at, sent_at"),
        ):
            rows = conn.execute(sa.text(f"SELECT {columns} FROM {schema}.{table}"))
            found[table] = sorted(tuple(str(v) for v in r) for r in rows)
    return found


def ledger(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT to_char(month, 'YYYY-MM') AS month, part, raw_file, raw_events, "
                "raw_sha256, rejects_file, rejects, rejects_sha256, archived_at IS NOT NULL "
                "AS done FROM drip._archives ORDER BY month, part"
            )
        ).mappings()
        return [dict(r) for r in rows]


def file_facts(path: Path) -> tuple[int, str]:
    with gzip.open(path, "rb") as unzipped:
        lines = unzipped.read().count(b"\n")
    return lines, hashlib.sha256(path.read_bytes()).hexdigest()


def reject_in_august(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    """Two records rejected, as if in August 2026."""
    load_lines(settings, tmp_path, [b"not json", b'{"event": 7}'], name="bad.ndjson")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE drip._rejects SET rejected_at = '2026-08-20T10:00:00Z'"))


@pytest.fixture
def loaded(settings: Settings, engine: Engine, tmp_path: Path) -> list[bytes]:
    lines = spread(6000, 17)
    load_lines(settings, tmp_path, lines)
    reject_in_august(engine, settings, tmp_path)
    return lines


def test_archive_writes_checked_files_per_month_and_drops_only_their_raw(
    loaded: list[bytes], engine: Engine, tmp_path: Path
) -> None:
    before_tables = tables(engine)
    per_month = raw_per_month(engine)
    assert sorted(per_month) == ["2026-07", "2026-08", "2026-09", "2026-10"]
    with engine.connect() as conn:
        rejected = [
            tuple(r)
            for r in conn.execute(
                sa.text("SELECT raw_text, reason, origin FROM drip._rejects ORDER BY id")
            )
        ]
    out = tmp_path / "archive"

    report = archive_months(engine, schema="drip", before=date(2026, 10, 1), to=out)

    assert [f"{m.month:%Y-%m}" for m in report.months] == ["2026-07", "2026-08", "2026-09"]
    assert sorted(p.name for p in out.iterdir()) == [
        "raw-2026-07.ndjson.gz",
        "raw-2026-08.ndjson.gz",
        "raw-2026-09.ndjson.gz",
        "rejects-2026-08.ndjson.gz",
    ]
    for entry in ledger(engine):
        month = entry["month"]
        assert entry["done"] and entry["part"] == 1
        assert file_facts(Path(entry["raw_file"])) == (per_month[month], entry["raw_sha256"])
        assert entry["raw_events"] == per_month[month]
    assert raw_per_month(engine) == {"2026-10": per_month["2026-10"]}
    assert raw_partitions(engine) == {"_raw_events_p202610"}
    assert tables(engine) == before_tables  # tracks, collections, subscribers keep their rows
    assert scalar(engine, "SELECT count(*) FROM drip._rejects") == 0
    rejects = [orjson.loads(line) for line in gzip.open(out / "rejects-2026-08.ndjson.gz")]
    assert [(r["raw"], r["reason"], r["origin"]) for r in rejects] == rejected
    assert [r["raw"] for r in rejects] == ["not json", '{"event": 7}']
    assert rejects[0]["rejected_at"] == "2026-08-20T10:00:00+00:00"
    # each line is the stored body of one event
    first = orjson.loads(gzip.open(out / "raw-2026-07.ndjson.gz").readline())
    assert first["event"] and first["occurred_at"].startswith("2026-07")
    assert report.lines()[0] == (
        f"Archived 3 month(s) before 2026-10-01 to {out} in {report.seconds:.1f} s: "
        f"{report.events:,} raw events, 2 rejects."
    )


def test_a_second_run_finds_nothing_and_a_date_mid_month_keeps_that_month(
    loaded: list[bytes], engine: Engine, tmp_path: Path
) -> None:
    out = tmp_path / "archive"
    first = archive_months(engine, schema="drip", before=date(2026, 9, 15), to=out)
    assert [f"{m.month:%Y-%m}" for m in first.months] == ["2026-07", "2026-08"]
    assert first.lines()[0] == (
        "2026-09-15 is in the middle of a month: only whole months are archived, so 2026-09 "
        "stays in the warehouse."
    )
    files = {p.name: p.read_bytes() for p in out.iterdir()}

    again = archive_months(engine, schema="drip", before=date(2026, 9, 1), to=out)

    assert again.months == []
    assert again.lines() == [
        "Nothing to archive before 2026-09-01: no raw events or rejects of earlier months are "
        "left in the warehouse."
    ]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files


def test_loading_the_archive_back_changes_no_table_row_and_brings_the_raw_back(
    loaded: list[bytes], settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    raw_before = snapshot(engine)["_raw_events"]
    before_tables = tables(engine)
    out = tmp_path / "archive"
    archive_months(engine, schema="drip", before=date(2026, 10, 1), to=out)

    report = run_pipeline(settings, [str(out)])

    assert report.rejected == 0  # the rejects files are not read as events
    assert report.landed == sum(n for m, n in raw_per_month(engine).items() if m < "2026-10")
    assert sum(report.rows_added.values()) == 0
    assert tables(engine) == before_tables
    assert snapshot(engine)["_raw_events"] == raw_before  # every raw event is back, as it was


def test_archive_plus_the_remaining_raw_rebuild_the_same_tables_on_an_empty_warehouse(
    loaded: list[bytes], settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    out = tmp_path / "archive"
    archive_months(engine, schema="drip", before=date(2026, 10, 1), to=out)
    with engine.connect() as conn:
        remaining = [
            str(p).encode()
            for p in conn.execute(sa.text("SELECT payload::text FROM drip._raw_events")).scalars()
        ]
    rest = write_ndjson(tmp_path / "remaining.ndjson", remaining)
    other = Settings(database_url=settings.database_url, schema="rebuilt", home=settings.home)

    run_pipeline(other, [str(out), str(rest)])

    assert tables(engine, "rebuilt") == tables(engine)


def test_late_events_of_an_archived_month_are_archived_as_its_next_part(
    loaded: list[bytes], settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    out = tmp_path / "archive"
    archive_months(engine, schema="drip", before=date(2026, 8, 1), to=out)
    late = spread(300, 99, datetime(2026, 7, 10, tzinfo=UTC), days=5)
    load_lines(settings, tmp_path, late, name="late.ndjson")
    arrived = raw_per_month(engine)["2026-07"]

    archive_months(engine, schema="drip", before=date(2026, 8, 1), to=out)

    assert [(e["month"], e["part"], e["raw_events"]) for e in ledger(engine)] == [
        ("2026-07", 1, ledger(engine)[0]["raw_events"]),
        ("2026-07", 2, arrived),
    ]
    assert file_facts(out / "raw-2026-07-2.ndjson.gz")[0] == arrived
    assert "2026-07" not in raw_per_month(engine)


def test_events_not_transformed_yet_keep_their_month_in_the_warehouse(
    engine: Engine, tmp_path: Path
) -> None:
    lines = spread(400, 5, days=20)
    queue_records(engine, ((f"w:{n}", b, len(b)) for n, b in enumerate(lines)), load_id="w")
    before = raw_per_month(engine)

    with pytest.raises(LoaderError, match=r"2026-07 still has [0-9,]+ event\(s\) to transform"):
        archive_months(engine, schema="drip", before=date(2026, 8, 1), to=tmp_path / "a")

    assert raw_per_month(engine) == before
    assert ledger(engine) == []


def test_a_file_it_did_not_write_is_never_overwritten(
    loaded: list[bytes], engine: Engine, tmp_path: Path
) -> None:
    out = tmp_path / "archive"
    out.mkdir()
    (out / "raw-2026-07.ndjson.gz").write_bytes(b"someone else's")
    before = raw_per_month(engine)

    with pytest.raises(ConfigError, match=r"raw-2026-07.ndjson.gz exists and was not written by"):
        archive_months(engine, schema="drip", before=date(2026, 8, 1), to=out)

    assert (out / "raw-2026-07.ndjson.gz").read_bytes() == b"someone else's"
    assert raw_per_month(engine) == before


def test_a_month_that_is_not_over_is_refused(engine: Engine, tmp_path: Path) -> None:
    now = scalar(engine, "SELECT now()")
    later = date(now.year + 1, 1, 1)
    with pytest.raises(ConfigError, match=r"a month that is not over: archive only whole past"):
        archive_months(engine, schema="drip", before=later, to=tmp_path / "a")


def test_storage_after_archive_has_no_raw_of_those_months_and_lists_them(
    loaded: list[bytes], engine: Engine, tmp_path: Path
) -> None:
    archive_months(engine, schema="drip", before=date(2026, 10, 1), to=tmp_path / "a")

    summary = storage_summary(engine, schema="drip")

    assert summary.oldest_raw_month == date(2026, 10, 1)
    assert [(f"{a.month:%Y-%m}", a.part) for a in summary.archived] == [
        ("2026-07", 1), ("2026-08", 1), ("2026-09", 1),
    ]  # fmt: skip
    july = next(m for m in summary.months if m.month == date(2026, 7, 1))
    assert "_raw_events" not in july.tables and july.rows("tracks") > 0


_ARCHIVE = """
import sys
from datetime import date
from pathlib import Path
from loader.warehouse.archive import archive_months
from loader.warehouse.db import make_engine
archive_months(make_engine(sys.argv[1]), schema="drip", before=date(2026, 11, 1), to=Path(sys.argv[2]))
"""


def _invariant(engine: Engine) -> None:
    """Never a dropped month without its checked files and a finished ledger row."""
    left = raw_per_month(engine)
    done = {e["month"] for e in ledger(engine) if e["done"]}
    for month in ("2026-07", "2026-08", "2026-09", "2026-10"):
        if month not in left:
            assert month in done, month
    for entry in ledger(engine):
        if entry["done"]:
            assert file_facts(Path(entry["raw_file"])) == (entry["raw_events"], entry["raw_sha256"])


def _kill_when(child: subprocess.Popen[bytes], ready: Any, timeout: float = 60) -> bool:
    """SIGKILL ``child`` as soon as ``ready()`` holds; False when it ended first."""
    deadline = time.monotonic() + timeout
    while child.poll() is None and time.monotonic() < deadline:
        if ready():
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            return True
        time.sleep(0.003)
    child.wait()
    return False


def test_killed_at_any_point_a_rerun_ends_like_one_run(
    settings: Settings, engine: Engine, tmp_path: Path, db_url: str
) -> None:
    lines = spread(40_000, 23)
    load_lines(settings, tmp_path, lines)
    reject_in_august(engine, settings, tmp_path)
    # the same warehouse in another schema, archived in one run, to compare with
    run_pipeline(
        Settings(database_url=db_url, schema="ref", home=settings.home),
        [str(tmp_path / "in.ndjson")],
    )
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO ref._rejects (_load_id, rejected_at, reason, origin, raw_text, "
                "raw_size, raw_sha256) SELECT _load_id, rejected_at, reason, origin, raw_text, "
                "raw_size, raw_sha256 FROM drip._rejects"
            )
        )
    before_tables = tables(engine)
    out = tmp_path / "killed"

    def partial(min_bytes: int = 0) -> Any:
        return lambda: any(
            p.name.endswith(".partial") and p.stat().st_size > min_bytes
            for p in (out.iterdir() if out.exists() else ())
        )

    def finished_more() -> Any:
        done = sum(e["done"] for e in ledger(engine))
        return lambda: sum(e["done"] for e in ledger(engine)) > done

    def renamed_not_dropped() -> bool:  # between the rename and the commit: rarely caught
        names = {p.name for p in out.iterdir()} if out.exists() else set()
        done = {Path(e["raw_file"]).name for e in ledger(engine) if e["done"] and e["raw_file"]}
        return bool({n for n in names if n.startswith("raw-")} - done)

    kills = 0
    for when in (
        partial(),  # the first file just opened
        partial(200_000),  # in the middle of a file
        finished_more(),  # right after a month's drop committed
        partial(),
        renamed_not_dropped,
        lambda: True,  # at once: while it starts
    ):
        child = subprocess.Popen([sys.executable, "-c", _ARCHIVE, db_url, str(out)])
        kills += _kill_when(child, when)
        _invariant(engine)
    subprocess.run([sys.executable, "-c", _ARCHIVE, db_url, str(out)], check=True)
    ref_out = tmp_path / "once"

    ref = archive_months(engine, schema="ref", before=date(2026, 11, 1), to=ref_out)

    assert kills >= 3
    assert [f"{m.month:%Y-%m}" for m in ref.months] == ["2026-07", "2026-08", "2026-09", "2026-10"]
    got = ledger(engine)
    assert [(e["month"], e["part"], e["raw_events"], e["rejects"], e["done"]) for e in got] == [
        (f"{m.month:%Y-%m}", 1, m.events, m.rejected, True) for m in ref.months
    ]
    # the very bytes of one run: the files are deterministic
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {
        p.name: p.read_bytes() for p in ref_out.iterdir()
    }
    assert raw_per_month(engine) == {}
    assert tables(engine) == before_tables
