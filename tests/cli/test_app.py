"""The command line as a user meets it: help everywhere, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from loader.cli.app import app
from loader.cli.edge import EdgeCommand
from loader.config import WEBHOOK_TOKEN_ENV
from tests.casefiles import case_bytes
from tests.support.imports import heavy_modules

BIN = [sys.executable, "-m", "loader"]
ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("sqlalchemy", "psycopg2", "alembic", "httpx", "starlette", "uvicorn")


def _command_paths() -> list[tuple[str, ...]]:
    """Every command and sub-command of the app, groups walked, as argument tuples."""
    paths: list[tuple[str, ...]] = []

    def walk(group: Any, prefix: tuple[str, ...]) -> None:
        # a group (Typer's own click, or click) is whatever has sub-commands
        for name, command in sorted(group.commands.items()):
            paths.append((*prefix, name))
            if isinstance(getattr(command, "commands", None), dict):
                walk(command, (*prefix, name))

    walk(typer.main.get_command(app), ())
    return paths


COMMANDS = _command_paths()
HEAVY_MODULES = heavy_modules(HEAVY)
"""The modules of loader that load a heavy library when imported (read from the code)."""
# What an argument list imports that is heavy, printed as the last line.
_IMPORTED = f"""
import json, sys
from loader.cli.app import app
from loader.cli.edge import EdgeCommand
from loader.config import WEBHOOK_TOKEN_ENV
from loader.domain.registry import OPT_IN
try:
    app(sys.argv[1:], prog_name="drip-loader")
except SystemExit:
    pass
heavy = {sorted({*HEAVY, *HEAVY_MODULES})!r}
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def _run(
    *args: str,
    url: str | None = None,
    stdin: bytes | None = None,
    cwd: str | None = None,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DRIP_LOADER_") and k != "DATABASE_URL"
    }
    if url:
        environ["DRIP_LOADER_DATABASE_URL"] = url
    environ.update(env)
    return subprocess.run(
        [*BIN, *args],
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd,
        timeout=120,
    )


def _leaves() -> dict[tuple[str, ...], Any]:
    """Every command that runs something (not a group), by its path."""
    leaves: dict[tuple[str, ...], Any] = {}

    def walk(group: Any, prefix: tuple[str, ...]) -> None:
        for name, command in group.commands.items():
            if isinstance(getattr(command, "commands", None), dict):
                walk(command, (*prefix, name))
            else:
                leaves[(*prefix, name)] = command

    walk(typer.main.get_command(app), ())
    return leaves


LEAVES = _leaves()


def _documented() -> set[tuple[str, ...]]:
    """The commands of the table under "## Commands" in docs/users.md, as argument tuples."""
    text = (ROOT / "docs" / "users.md").read_text(encoding="utf-8")
    section = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    found = set()
    for cell in re.findall(r"^\| `drip-loader ([^`]*)`", section, flags=re.MULTILINE):
        words = []
        for word in cell.split():
            if not re.fullmatch(r"[a-z][a-z-]*", word):
                break  # an argument (PATHS..., QUERY) or an option
            words.append(word)
        found.add(tuple(words))
    return found


def test_the_command_list_is_the_apps() -> None:
    # A new command that is not in the users' command table fails here, and so does a
    # command the table lists that the app lost.
    assert _documented() == set(LEAVES)


@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_every_command_runs_inside_the_error_edge(path: tuple[str, ...]) -> None:
    assert isinstance(LEAVES[path], EdgeCommand), f"{' '.join(path)} is not inside the edge"


# Commands that print a result; the others write data (sample, dbt-sources) or run a shell.
NO_RESULT = {("sample",), ("psql",), ("dbt-sources",)}


@pytest.mark.parametrize("path", sorted(set(LEAVES) - NO_RESULT), ids=" ".join)
def test_every_command_that_prints_a_result_has_the_same_format_option(
    path: tuple[str, ...],
) -> None:
    [option] = [p for p in LEAVES[path].params if "--format" in p.opts]
    choices = [c.value for c in option.type_descriptor.choices]
    assert (choices, option.default) == (["table", "csv", "json"], "table")


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_without_any_environment(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"DRIP_LOADER_DATABASE_URL": ""})
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


@pytest.mark.parametrize(
    "args", [("--help",), ("--version",), *((*c, "--help") for c in COMMANDS)], ids=" ".join
)
def test_help_and_version_import_nothing_heavy(args: tuple[str, ...]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTED, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [], f"{' '.join(args)} imports them"


def test_the_heavy_modules_are_read_from_the_code() -> None:
    # the checks below are only as good as this set: it must hold the database side
    assert {"loader.warehouse.db", "loader.pipeline.run", "loader.commands"} <= HEAVY_MODULES
    assert not {"loader.config", "loader.cli.app", "loader.analyst.catalog"} & HEAVY_MODULES


def test_import_loader_does_not_import_the_pipeline() -> None:
    check = "import json, loader, sys; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    imported = set(json.loads(done.stdout))
    assert {"loader", "loader.config", "loader.errors"} <= imported
    assert not imported & {*HEAVY_MODULES, *HEAVY}


def test_python_dash_m_loader_works() -> None:
    result = _run("--version")
    assert (result.returncode, result.stdout.strip()) == (0, "drip-loader 0.1.0")


def test_load_and_status_as_json(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "in.ndjson"
    path.write_bytes(case_bytes("email_opened") + b"\n{broken\n")
    result = _run("load", str(path), "--format", "json", "--writers", "3", url=db_url)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (
        report["read"],
        report["landed"],
        report["rejected"],
        report["rows_added"]["email_opened"],
    ) == (2, 1, 1, 1)
    status = json.loads(_run("status", "--format", "json", url=db_url).stdout)
    assert (
        status["tables"]["email_opened"] == 1 and status["rejects"] == 1 and status["pending"] == 0
    )
    assert status["last_runs"][0]["status"] == "completed"


def test_status_says_forwarding_is_off_until_the_first_emit(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "in.ndjson"
    path.write_bytes(case_bytes("email_opened") + b"\n")
    assert _run("load", str(path), url=db_url).returncode == 0
    lines = _run("status", url=db_url).stdout.splitlines()
    assert [line.split() for line in lines if "Segment" in line] == [
        "forwarding to Segment off (the first `drip-loader emit` turns it on)".split()
    ]
    status = json.loads(_run("status", "--format", "json", url=db_url).stdout)
    assert status["segment"] == {"forwarded": 0, "pending": 0, "failed": 0, "on": False}
    assert status["subscribers_to_merge"] == 0  # the load merged what it queued


def test_load_from_stdin_prints_a_summary(db_url: str) -> None:
    result = _run("load", "-", url=db_url, stdin=case_bytes("email_link_clicked") + b"\n")
    assert result.returncode == 0, result.stderr
    summary = {
        " ".join(line.split()[:-1]): line.split()[-1] for line in result.stdout.splitlines()[1:]
    }
    assert summary["read"] == summary["landed"] == summary["transformed"] == "1"
    assert summary["rejected"] == summary["duplicates"] == "0"
    assert summary["email_link_clicked"] == summary["tracks"] == "1"


def test_sql_queries_the_warehouse(db_url: str) -> None:
    _run("load", "-", url=db_url, stdin=case_bytes("email_opened") + b"\n")
    result = _run(
        "sql", "select event, count(*) as n from tracks group by 1", "--format", "csv", url=db_url
    )
    assert (result.returncode, result.stdout.strip()) == (0, "event,n\nemail_opened,1")


def test_missing_file_is_one_line_and_exit_1() -> None:
    result = _run("load", "/nonexistent/events.ndjson", url="postgresql://u@127.0.0.1:1/x")
    assert result.returncode == 1
    assert result.stderr == "Error: /nonexistent/events.ndjson: no such file; check the path\n"


def test_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    path = tmp_path / "in.ndjson"
    path.write_bytes(case_bytes("email_opened") + b"\n")
    result = _run("load", str(path), url="postgresql://loader:s3cr3t-pw@127.0.0.1:1/warehouse")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: migrate failed"), result.stderr
    assert (
        "cannot reach the database" in lines[0] and "check that the server is running" in lines[0]
    )
    assert "s3cr3t-pw" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_invalid_schema_is_refused_before_anything_runs() -> None:
    result = _run(
        "status", "--schema", 'drip"; drop table x; --', url="postgresql://u@127.0.0.1:1/x"
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error: invalid schema name 'drip\"; drop table x; --'")


def test_schema_option_loads_into_another_schema(db_url: str) -> None:
    result = _run(
        "load", "-", "--schema", "drip_eu", url=db_url, stdin=case_bytes("email_bounced") + b"\n"
    )
    assert result.returncode == 0, result.stderr
    out = _run(
        "sql",
        "select count(*) as n from email_bounced",
        "--schema",
        "drip_eu",
        "--format",
        "json",
        url=db_url,
    )
    assert json.loads(out.stdout) == [{"n": 1}]
    empty = _run("sql", "select count(*) as n from email_bounced", "--format", "json", url=db_url)
    assert json.loads(empty.stdout) == [{"n": 0}]


def test_sql_is_read_only(db_url: str) -> None:
    result = _run("sql", "delete from tracks", url=db_url)
    assert result.returncode == 1
    assert "read-only transaction" in result.stderr


def test_sample_is_deterministic(tmp_path: Path) -> None:
    a, b, c = (tmp_path / n for n in ("a", "b", "c"))
    for path, seed in ((a, "3"), (b, "3"), (c, "4")):
        assert _run("sample", "--events", "500", "--seed", seed, "--out", str(path)).returncode == 0
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    lines = a.read_bytes().splitlines()
    assert len(lines) == 500
    events = {json.loads(line)["event"] for line in lines}
    assert {
        "subscriber.received_email",
        "subscriber.opened_email",
        "subscriber.clicked_email",
    } <= events
    assert any(
        not e.endswith(("_email", "bounced", "complained")) and "unsubscribed" not in e
        for e in events
    )


def test_no_migrate_refuses_an_unmigrated_schema(empty_db_url: str) -> None:
    result = _run("load", "--no-migrate", url=empty_db_url)
    assert result.returncode == 1
    assert "run `drip-loader migrate`" in result.stderr


UNREACHABLE = "postgresql://u@127.0.0.1:1/x"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["report", "daily", "--since", "yesterday"],
            "Error: --since 'yesterday' is not a date or time: use 2026-10-01 or "
            "2026-10-01T12:00:00Z",
        ),
        (
            ["report", "daily", "--out", "nodir/r.csv"],
            "Error: cannot write nodir/r.csv: no directory nodir; create it first",
        ),
        (
            ["report", "attribution", "--conversions", "website.orders", "--window", "7 days"],
            "Error: --window '7 days' is not a duration: use a number of days, hours or minutes "
            "such as 7d, 24h or 90m",
        ),
        (
            ["emit"],
            "Error: forwarding to Segment is off: no write key; set SEGMENT_WRITE_KEY or pass "
            "--segment-write-key",
        ),
        (
            ["collections", "enable", "subscriber_aplied_tag"],
            "Error: no collection named subscriber_aplied_tag: did you mean "
            "subscriber_applied_tag?",
        ),
        (
            ["collections", "enable", "tags"],
            "Error: no collection named tags: `drip-loader collections list` shows the 28 "
            "collections (a table name, or a Drip event such as subscriber.applied_tag)",
        ),
        (
            ["emit", "--off", "--on"],
            "Error: --off cannot go with --on: --off sends nothing; run `drip-loader emit --off` "
            "alone",
        ),
        (
            ["emit", "--outbox-retention", "a week"],
            "Error: --outbox-retention must be a whole number and a unit (s, m, h, d or w), such "
            "as 7d or 12h; got 'a week'",
        ),
        (
            ["prune", "--runs-older-than", "90"],
            "Error: --runs-older-than must be a whole number and a unit (s, m, h, d or w), such "
            "as 7d or 12h; got '90'",
        ),
        (
            ["archive", "--before", "October", "--to", "out"],
            "Error: --before must be a date such as 2026-10-01 (YYYY-MM-DD), got 'October'",
        ),
        (
            ["collections", "disable"],
            "Error: name at least one collection (see `drip-loader collections list`)",
        ),
        (
            ["sample", "--out", "nodir/sample.ndjson"],
            "Error: cannot write nodir/sample.ndjson: no directory nodir; create it first",
        ),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_bad_options_are_refused_before_the_database_is_touched(
    args: list[str], line: str, tmp_path: Path
) -> None:
    # An unreachable server: touching it would say "cannot reach the database" instead.
    result = _run(*args, url=UNREACHABLE, SEGMENT_WRITE_KEY="", cwd=str(tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (1, "", line + "\n")


def test_serve_emit_without_a_write_key_is_refused_before_the_port_and_the_database(
    tmp_path: Path,
) -> None:
    # An unreachable server would start anyway (429 until it is up), so only the check made
    # first can give this line; the port is one another socket holds, which binding would report.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = _run(
            "serve", "--emit", "--host", "127.0.0.1", "--port", str(port),
            url=UNREACHABLE, SEGMENT_WRITE_KEY="", cwd=str(tmp_path),
            DRIP_LOADER_WEBHOOK_TOKEN="t" * 24,
        )  # fmt: skip
    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        "Error: forwarding to Segment is off: no write key; set SEGMENT_WRITE_KEY or pass "
        "--segment-write-key\n",
    )


def test_a_bad_option_starts_no_embedded_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = _run("report", "daily", "--since", "yesterday", DRIP_LOADER_HOME=str(home))
    assert result.returncode == 1 and result.stderr.startswith("Error: --since 'yesterday'")
    assert not home.exists()


def test_debug_after_the_command_shows_the_traceback() -> None:
    result = _run("load", "/nonexistent/events.ndjson", "--debug", url=UNREACHABLE)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "SourceError: /nonexistent/events.ndjson: no such file; check the path"
    )


def test_serve_help_names_the_token_variable() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert WEBHOOK_TOKEN_ENV in " ".join(result.output.split())


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_shows_no_python_types(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    noise = [
        t
        for t in ("<bool>", "<str>", "<int", "<float", "<list", "<path>", "{")
        if t in result.output
    ]
    assert noise == [], result.output


_NOT_POSTGRES = (
    "drip-loader works with PostgreSQL only: postgresql://user:password@host:5432/dbname "
    "(or no URL at all for the embedded server)"
)


@pytest.mark.parametrize(
    "command",
    [
        ("status",),
        ("migrate",),
        ("load", "-"),
        ("sql", "select 1"),
        ("psql",),
        ("rebuild",),
        ("emit",),
        ("collections", "list"),
        ("report", "daily"),
    ],
)
def test_a_non_postgresql_url_is_one_error_line_for_every_command(
    command: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRIP_LOADER_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, [*command, "--database-url", "mysql://root:pw@x/db"])
    assert (result.exit_code, result.output) == (
        1,
        f"Error: --database-url is a mysql:// URL: {_NOT_POSTGRES}\n",
    )
    monkeypatch.setenv("DATABASE_URL", "sqlite:///warehouse.db")
    result = CliRunner().invoke(app, list(command))
    assert (result.exit_code, result.output) == (
        1,
        f"Error: DATABASE_URL is a sqlite:// URL: {_NOT_POSTGRES}\n",
    )


def test_a_non_postgresql_url_stops_serve_before_it_listens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRIP_LOADER_WEBHOOK_TOKEN", "test-token-Abc123_xyz-0123456789")
    monkeypatch.setenv("DRIP_LOADER_DATABASE_URL", "garbage")
    result = CliRunner().invoke(app, ["serve", "--port", "0"])
    assert (result.exit_code, result.output) == (
        1,
        f"Error: DRIP_LOADER_DATABASE_URL is not a URL: {_NOT_POSTGRES}\n",
    )
