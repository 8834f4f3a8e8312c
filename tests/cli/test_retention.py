"""The retention commands as a user sees them: prune, archive, emit --off, rebuild."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from loader.cli.app import app
from loader.config import Settings
from loader.domain.sample import MEAN_GAP, generate_events
from tests.support.segment_sink import SegmentSink
from tests.support.warehouse import load_lines

WRITE_KEY = "wk_5e1d0c2b3a4f9e8d"


def invoke(db_url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"DRIP_LOADER_DATABASE_URL": db_url})
    return result.exit_code, result.stdout, result.stderr


def months(settings: Settings, tmp_path: Path, events: int = 1500) -> None:
    """Events over August to October 2026."""
    start = datetime(2026, 8, 2, tzinfo=UTC)
    factor = timedelta(days=85) / (events * MEAN_GAP)
    load_lines(
        settings, tmp_path, generate_events(events=events, seed=4, start=start, spread=factor)
    )


def test_prune_prints_what_it_deleted_and_dry_run_deletes_nothing(
    db_url: str, engine: Engine
) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO drip._runs (load_id, command, status, started_at) VALUES "
                "('a', 'load', 'completed', now() - interval '200 days'), "
                "('b', 'load', 'completed', now() - interval '1 day')"
            )
        )

    code, dry, _ = invoke(db_url, "prune", "--dry-run", "--runs-older-than", "30d")
    code_again, out, _ = invoke(db_url, "prune", "--runs-older-than", "30d")

    stamp = r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} UTC"
    assert code == code_again == 0
    assert re.fullmatch(
        rf"Would delete 1 run\(s\) from drip\._runs started before {stamp} \(older than 30d; "
        r"the newest run of each command is kept\)\.\n"
        rf"Would delete 0 sent row\(s\) from drip\._outbox sent before {stamp} \(older than "
        r"7d\)\.\n",
        dry,
    ), dry
    assert out.startswith("Deleted 1 run(s) from drip._runs started before ")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT load_id FROM drip._runs")).scalars().all() == ["b"]


def test_prune_as_json_names_its_windows(db_url: str) -> None:
    code, out, _ = invoke(db_url, "prune", "--outbox-retention", "12h", "--format", "json")

    facts = json.loads(out)
    assert code == 0
    assert (facts["runs"], facts["outbox"], facts["runs_window"], facts["outbox_window"]) == (
        0,
        0,
        "90d",
        "12h",
    )


def test_archive_prints_each_month_and_a_mid_month_date(
    db_url: str, settings: Settings, tmp_path: Path
) -> None:
    months(settings, tmp_path)
    out_dir = tmp_path / "archive"

    code, out, _ = invoke(db_url, "archive", "--before", "2026-10-15", "--to", str(out_dir))

    lines = out.splitlines()
    assert code == 0, out
    assert lines[0] == (
        "2026-10-15 is in the middle of a month: only whole months are archived, so 2026-10 "
        "stays in the warehouse."
    )
    assert re.fullmatch(
        rf"Archived 2 month\(s\) before 2026-10-01 to {re.escape(str(out_dir.resolve()))} in "
        r"[0-9.]+ s: [0-9,]+ raw events, 0 rejects\.",
        lines[1],
    ), lines[1]
    assert re.fullmatch(
        r"  2026-08  raw-2026-08\.ndjson\.gz \([0-9,]+ events, [0-9.]+ MB\)  [0-9.]+ s", lines[2]
    ), lines[2]
    assert lines[3].startswith("  2026-09  raw-2026-09.ndjson.gz (")
    assert lines[4] == (
        "Each file was read back and checked (lines, sha256) before the month's raw events left "
        "the warehouse; collection tables and tracks keep their rows. "
        f"`drip-loader load {out_dir.resolve()}` brings the raw events back."
    )
    assert len(lines) == 5


def test_archive_refuses_a_month_that_is_not_over_in_one_line(db_url: str, tmp_path: Path) -> None:
    code, out, err = invoke(db_url, "archive", "--before", "2999-01-01", "--to", str(tmp_path))

    assert (code, out) == (1, "")
    assert re.fullmatch(
        r"Error: --before 2999-01-01 reaches into 2999-01, a month that is not over: archive "
        r"only whole past months \(--before [0-9]{4}-[0-9]{2}-01 or earlier\)\n",
        err,
    ), err


def test_archive_to_a_file_is_refused_before_the_database(tmp_path: Path) -> None:
    afile = tmp_path / "f"
    afile.write_text("")
    code, out, err = invoke(
        "postgresql://nobody@127.0.0.1:1/none",
        "archive",
        "--before",
        "2026-10-01",
        "--to",
        str(afile),
    )
    assert (code, out, err) == (
        1,
        "",
        f"Error: --to {afile} is a file: give a directory (it is made if missing)\n",
    )


def test_emit_off_says_what_stays_queued_and_emit_then_refuses_until_on(
    db_url: str, settings: Settings, tmp_path: Path
) -> None:
    months(settings, tmp_path, events=300)
    with SegmentSink(write_key=WRITE_KEY) as sink:
        env = ("--segment-write-key", WRITE_KEY, "--segment-host", sink.url)
        assert invoke(db_url, "emit", *env)[0] == 0
        months(settings, tmp_path, events=350)  # more events: queued, not sent

        code, out, _ = invoke(db_url, "emit", "--off")
        refused = invoke(db_url, "emit", *env)
        on = invoke(db_url, "emit", "--on", *env)

    lines = out.splitlines()
    assert code == 0
    assert re.fullmatch(
        r"Forwarding to Segment is off since [0-9-]+ [0-9:]+ UTC: events received from then on "
        r"are not queued, and nothing is sent\.",
        lines[0],
    ), lines[0]
    assert re.fullmatch(
        r"  [0-9,]+ event\(s\) stay queued and 0 failed one\(s\) are kept: Segment has not "
        r"confirmed them\.",
        lines[1],
    ), lines[1]
    assert lines[2] == (
        "  `drip-loader emit --on` turns it on again: it sends those and every event received "
        "meanwhile, never one Segment already confirmed."
    )
    assert refused[0] == 1 and refused[2].startswith("Error: forwarding to Segment is off since ")
    assert refused[2].endswith(
        "(drip-loader emit --off), so nothing was sent; run `drip-loader emit --on` to turn it "
        "on again (it sends what stayed queued and every event received since)\n"
    )
    assert on[0] == 0 and on[1].startswith("Forwarded to Segment in ")


def test_rebuild_reports_the_months_it_kept(
    db_url: str, settings: Settings, tmp_path: Path
) -> None:
    months(settings, tmp_path)
    assert invoke(db_url, "archive", "--before", "2026-09-01", "--to", str(tmp_path / "a"))[0] == 0

    code, out, _ = invoke(db_url, "rebuild")

    lines = out.splitlines()
    assert code == 0, out
    assert re.fullmatch(
        r"Rebuilt 3 month\(s\) from [0-9,]+ raw events in [0-9.]+ s: .*tracks [0-9,]+.*", lines[0]
    ), lines[0]
    assert re.fullmatch(
        r"  2026-08  no raw +0 events mapped again; [0-9,]+ rows kept without raw events",
        lines[1],
    ), lines[1]
    assert lines[2].startswith("  2026-09  emptied ")
    assert lines[3].startswith("  2026-10  emptied ")
    assert lines[4].startswith("Kept ") and lines[4].endswith(
        " rows whose raw events are not in the warehouse (archived, or loaded without raw), in "
        "2026-08: they cannot be rebuilt; `drip-loader load` of the archive brings their raw "
        "back (then rebuild again)."
    )
