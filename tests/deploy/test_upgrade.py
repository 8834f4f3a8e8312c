"""docs/operators.md, "Upgrading and rolling back": its commands, taken from the doc and run
with this test's paths as the loader role of roles.sql: the backup and the restore, alembic's
current and downgrade from the checkout, and the units' refusal of a schema behind head."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from loader.domain.sample import generate_events
from loader.warehouse import migrate
from tests.deploy.conftest import Warehouse, psql, run_cli
from tests.deploy.units import (
    BIN,
    REPO,
    argv,
    render,
    run_oneshot,
    service_environment,
    shipped_unit,
)
from tests.support.postgres import debian_bin
from tests.support.serve import TOKEN
from tests.support.warehouse import one, write_ndjson

OPERATORS = REPO / "docs" / "operators.md"
ALEMBIC = Path(sys.executable).parent / "alembic"
PREVIOUS = "0006"
"""The revision the doc's downgrade example goes to."""


def doc_command(containing: str) -> str:
    """The one command line of the doc's ```sh blocks that contains ``containing``."""
    blocks = re.findall(r"```sh\n(.*?)```", OPERATORS.read_text(), re.S)
    lines = [line for block in blocks for line in block.splitlines() if containing in line]
    (found,) = lines
    return found


class Host:
    """The doc's paths mapped onto this test: its venv, environment file, dump and database."""

    def __init__(self, warehouse: Warehouse, tmp_path: Path) -> None:
        self.warehouse = warehouse
        self.env_file = tmp_path / "drip-loader.env"
        self.env_file.write_text(
            f"DRIP_LOADER_DATABASE_URL={warehouse.loader_url}\nDRIP_LOADER_WEBHOOK_TOKEN={TOKEN}\n"
        )
        self.env_file.chmod(0o600)
        self.dump = tmp_path / "drip-before-upgrade.dump"
        self.tmp_path = tmp_path
        bindir = debian_bin()
        assert bindir is not None, "pg_dump and pg_restore come with Debian's PostgreSQL"
        self.bindir = bindir

    def render(self, line: str) -> str:
        for doc, here in (
            ("sudo ", ""),
            ("/etc/drip-loader/drip-loader.env", str(self.env_file)),
            ("/opt/drip-loader/.venv/bin/drip-loader", str(BIN)),
            (".venv/bin/alembic", str(ALEMBIC)),
            ("/var/backups/drip-before-upgrade.dump", str(self.dump)),
            ("exec pg_dump ", f"exec {self.bindir / 'pg_dump'} "),
            ("pg_restore --dbname=warehouse", f"{self.bindir / 'pg_restore'} --dbname={self.warehouse.admin_url}"),
            ("psql -d warehouse", f"{psql()} -d {self.warehouse.admin_url}"),
        ):  # fmt: skip
            line = line.replace(doc, here)
        return line

    def run(self, containing: str) -> subprocess.CompletedProcess[str]:
        """The doc's command line, in the checkout (as `cd /opt/drip-loader` says)."""
        return subprocess.run(
            self.render(doc_command(containing)),
            shell=True,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
        )


def _count(warehouse: Warehouse, sql: str, role: str | None = None) -> int:
    engine = warehouse.engine(role)
    try:
        return int(one(engine, sql)["n"])
    finally:
        engine.dispose()


def test_migrate_current_downgrade_as_the_doc_says_and_the_units_wait_for_migrate(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    host = Host(warehouse, tmp_path)
    migrated = host.run("drip-loader migrate'")
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout == f"Schema 'drip' is at revision {migrate.HEAD}.\n"

    current = host.run("alembic -x schema=drip current")
    assert (current.returncode, current.stdout) == (0, f"{migrate.HEAD} (head)\n"), current.stderr
    down = host.run(f"alembic -x schema=drip downgrade {PREVIOUS}")
    assert (down.returncode, down.stdout) == (0, ""), down.stderr
    assert host.run("alembic -x schema=drip current").stdout == f"{PREVIOUS}\n"

    # the units run with --no-migrate: they refuse, and say what to run
    behind = (
        f"schema 'drip' is at revision {PREVIOUS}, not {migrate.HEAD}: run `drip-loader migrate`"
    )
    load = render(shipped_unit("drip-loader-load.service"), root=tmp_path, env_file=host.env_file)
    outcome = run_oneshot(load, root=tmp_path)
    assert outcome.result == "failed"
    assert behind in outcome.output
    serve = render(
        shipped_unit("drip-loader-serve.service"), root=tmp_path, env_file=host.env_file, port=0
    )
    (exec_start,) = serve.values("Service", "ExecStart")
    refused = subprocess.run(
        argv(exec_start), env=service_environment(serve), capture_output=True, text=True
    )
    assert refused.returncode == 1
    assert behind in refused.stderr

    assert host.run("drip-loader migrate'").returncode == 0
    assert run_oneshot(load, root=tmp_path).result == "succeeded"


def test_alembic_takes_the_database_and_schema_from_x_arguments(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    run_cli(["migrate"], url=warehouse.loader_url)
    base = [str(ALEMBIC), "-x", f"database_url={warehouse.loader_url}"]
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [*base, "-x", "schema=drip", "current"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert (done.returncode, done.stdout) == (0, f"{migrate.HEAD} (head)\n"), done.stderr
    typo = subprocess.run(
        [*base, "-x", "shema=drip", "current"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert typo.returncode != 0
    assert (typo.stdout + typo.stderr).strip() == (
        "FAILED: unknown alembic -x argument(s) shema: use -x schema=... or -x database_url=..."
    )


def test_the_backup_restores_the_schema_with_its_owner_and_grants(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    host = Host(warehouse, tmp_path)
    events = write_ndjson(tmp_path / "events.ndjson", generate_events(events=500, seed=4))
    run_cli(["load", str(events)], url=warehouse.loader_url)
    before = _count(warehouse, "SELECT count(*) AS n FROM drip.tracks")
    assert before > 0

    backup = host.run("exec pg_dump")
    assert backup.returncode == 0, backup.stderr
    assert host.dump.stat().st_size > 0
    dropped = host.run("DROP SCHEMA drip CASCADE")
    assert dropped.returncode == 0, dropped.stderr
    restored = host.run("pg_restore")
    assert restored.returncode == 0, restored.stderr

    assert _count(warehouse, "SELECT count(*) AS n FROM drip.tracks", warehouse.analyst) == before
    owner = "SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'drip' AND nspowner = to_regrole(current_user)"
    assert _count(warehouse, owner, warehouse.loader) == 1
    # the analysts' default privileges came back too: a table the loader makes now is theirs to read
    warehouse.psql("CREATE TABLE drip.after_restore (x int);\n", as_url=warehouse.loader_url)
    assert _count(warehouse, "SELECT count(*) AS n FROM drip.after_restore", warehouse.analyst) == 0
    run_cli(["load", str(events)], url=warehouse.loader_url)  # and the loader carries on
