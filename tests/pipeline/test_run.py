"""The pipeline: one run lands, transforms and merges, and tells a progress display each phase."""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from loader.config import Settings
from loader.domain.sample import generate_events
from loader.errors import StepFailed
from loader.pipeline.run import run_pipeline
from tests.support.warehouse import one, write_ndjson


class Recorder:
    """A progress display that remembers what it was told."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, int]] = []

    def start(self, description: str, total: int | None) -> None:
        self.phases.append((description, 0))

    def advance(self, amount: int) -> None:
        name, done = self.phases[-1]
        self.phases[-1] = (name, done + amount)


def test_each_phase_of_a_run_shows_its_progress(settings: Settings, tmp_path: Path) -> None:
    bodies = list(generate_events(events=2_000, seed=4))
    path = write_ndjson(tmp_path / "in.ndjson", bodies)
    recorder = Recorder()

    report = run_pipeline(settings, [str(path)], progress=recorder)

    names = [name for name, _ in recorder.phases]
    assert names[-2:] == ["Transforming", "Merging subscribers"]
    assert recorder.phases[0] == (names[0], path.stat().st_size)  # every byte read
    # every landed event with a Drip subscriber id queued one snapshot, all merged
    merged = recorder.phases[-1][1]
    assert 0 < report.rows_added["subscribers"] <= merged <= report.landed


def test_the_number_of_writers_changes_nothing_in_the_tables(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    # The sample's retries of one event (exact, and with a changed snapshot) are spread over
    # the file: whichever writer lands them, the first copy in the input is the one kept.
    sample = write_ndjson(tmp_path / "sample.ndjson", generate_events(events=6_000, seed=11))
    seen = []
    for writers in (1, 3):
        schema = f"w{writers}"
        report = run_pipeline(
            replace(settings, schema=schema, writers=writers, batch_size=500), [str(sample)]
        )
        raw = one(
            engine,
            "SELECT md5(string_agg(_event_key || payload::text, ',' ORDER BY _event_key)) AS h "
            f"FROM {schema}._raw_events",
        )
        tracks = one(
            engine,
            "SELECT md5(string_agg(id || event || coalesce(anonymous_id, '') || "
            f"coalesce(user_id, ''), ',' ORDER BY id)) AS h FROM {schema}.tracks",
        )
        seen.append((report.landed, report.duplicates, raw["h"], tracks["h"]))
    assert seen[0] == seen[1]
    assert seen[0][0] > 5_000 and seen[0][1] > 0


def test_a_read_failure_lands_every_record_read_before_it_and_says_so(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    # One chunk would hold the whole file: before the failure nothing had been flushed.
    settings = replace(settings, batch_size=100_000)
    lines = [
        json.dumps(
            {
                "event": "subscriber.opened_email",
                "data": {"subscriber": {"id": f"s{n}", "email": f"u{n}@example.com"}},
                "occurred_at": f"2026-10-06T15:{n // 60 % 60:02}:{n % 60:02}Z",
                "padding": "x" * 500,
                "n": n,
            }
        ).encode()
        for n in range(8000)
    ]
    whole = gzip.compress(b"".join(line + b"\n" for line in lines))
    path = tmp_path / "cut.ndjson.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])  # the transfer broke off
    with pytest.raises(StepFailed) as failed:
        run_pipeline(settings, [str(path)])
    said = re.search(r"read failed after ([\d,]+) record\(s\)", str(failed.value))
    assert said, failed.value
    read = int(said.group(1).replace(",", ""))
    assert 0 < read < len(lines)
    assert "those are landed" in str(failed.value) and "run the same command again" in str(
        failed.value
    )
    assert one(engine, "SELECT count(*) AS n FROM drip._raw_events")["n"] == read
    # The rerun with the whole file lands the rest, nothing twice.
    path.write_bytes(whole)
    report = run_pipeline(settings, [str(path)])
    assert (report.landed, report.duplicates) == (len(lines) - read, read)


def test_a_source_with_no_accepted_record_is_warned_about_and_kept(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    bodies = list(generate_events(events=500, seed=6))
    write_ndjson(folder / "two.json.txt", bodies)  # events under another name: loaded
    (folder / "random.json").write_bytes(bytes(range(1, 256)) * 4 + b"\n" * 28)
    (folder / "empty.ndjson").write_bytes(b"")
    (folder / "notes.txt").write_text("not events\n")
    said: list[str] = []

    report = run_pipeline(settings, [str(folder)], announce=said.append)

    random_source = str((folder / "random.json").resolve())
    empty_source = str((folder / "empty.ndjson").resolve())
    rejected = report.rejected
    assert report.read == 500 + rejected and rejected > 0
    assert report.without_events == [empty_source, random_source]
    assert said == [
        f"Skipped {folder}/notes.txt: not JSON (Drip events are NDJSON or a JSON array)",
        f"Loading {folder}/two.json.txt: its name does not end in .json, .ndjson, .jsonl or "
        ".gz, but it holds Drip events",
        f"Warning: no Drip event in {empty_source}: it holds no record",
        f"Warning: no Drip event in {random_source}: all {rejected:,} record(s) were rejected "
        f"(kept in drip._rejects with the reason, origin {random_source}:<line>)",
    ]
    kept = one(
        engine,
        "SELECT count(*) AS n FROM drip._rejects WHERE origin LIKE :o",
        o=random_source + ":%",
    )
    assert kept["n"] == rejected
