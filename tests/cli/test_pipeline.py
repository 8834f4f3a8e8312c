"""``load`` as a user meets it: nothing skipped or lost without a word."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from loader.cli.app import app
from loader.domain.sample import generate_events


def test_load_names_what_it_skips_and_warns_of_a_file_with_no_event(
    db_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "two.json.txt").write_bytes(b"\n".join(generate_events(events=500, seed=2)))
    (folder / "garbage.ndjson").write_bytes(b"\x00\x01binary\n" * 29)
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    env = {"DRIP_LOADER_DATABASE_URL": db_url}
    result = CliRunner().invoke(app, ["load", str(folder), "--format", "json"], env=env)
    garbage = (folder / "garbage.ndjson").resolve()
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"Skipped {folder}/.DS_Store: hidden\n"
        f"Loading {folder}/two.json.txt: its name does not end in .json, .ndjson, .jsonl or "
        ".gz, but it holds Drip events\n"
        f"Warning: no Drip event in {garbage}: all 29 record(s) were rejected (kept in "
        f"drip._rejects with the reason, origin {garbage}:<line>)\n"
    )
    assert '"read": 529' in result.stdout and '"rejected": 29' in result.stdout
