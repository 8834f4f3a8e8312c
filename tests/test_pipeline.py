"""The pipeline: one run lands, transforms and merges, and tells a progress display each phase."""

from __future__ import annotations

from pathlib import Path

from loader.config import Settings
from loader.pipeline import run_pipeline
from loader.sample import generate_events
from tests.support.warehouse import write_ndjson


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
