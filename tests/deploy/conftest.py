"""A warehouse database set up by deploy/postgres/roles.sql, on the session's server."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from loader.warehouse.db import make_engine
from tests.deploy.units import BIN, REPO
from tests.support.postgres import database_url, debian_bin

POSTGRES = REPO / "deploy" / "postgres"
PASSWORD = "Deploy-test-pw-7"
_counter = itertools.count()


@dataclass(frozen=True)
class Warehouse:
    """A database prepared as docs/operators.md says, with role names of this test."""

    name: str
    admin_url: str
    loader: str
    analyst: str

    def url(self, role: str) -> str:
        return (
            make_url(self.admin_url)
            .set(username=role, password=PASSWORD)
            .render_as_string(hide_password=False)
        )

    @property
    def loader_url(self) -> str:
        return self.url(self.loader)

    @property
    def analyst_url(self) -> str:
        return self.url(self.analyst)

    def rename(self, sql: str) -> str:
        """``sql`` (a shipped file, a doc's block) with this test's role names."""
        sql = re.sub(r"\bdrip_loader\b", self.loader, sql)
        return re.sub(r"\bdrip_analyst\b", self.analyst, sql)

    def psql(self, sql: str, *, as_url: str | None = None) -> str:
        """Run ``sql`` with psql (stopping at the first error), as the admin by default."""
        done = subprocess.run(
            [psql(), "-X", "-v", "ON_ERROR_STOP=1", "-d", as_url or self.admin_url, "-f", "-"],
            input=self.rename(sql),
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def make_roles(self) -> None:
        """roles.sql run by psql as the admin; then each role gets a password."""
        self.psql(read_shipped("roles.sql"))
        self.psql(
            f"ALTER ROLE {self.loader} PASSWORD '{PASSWORD}';\n"
            f"ALTER ROLE {self.analyst} PASSWORD '{PASSWORD}';\n"
        )

    def engine(self, role: str | None = None) -> Engine:
        return make_engine(self.url(role) if role else self.admin_url, null_pool=True)


def psql() -> str:
    bindir = debian_bin()
    found = str(bindir / "psql") if bindir else shutil.which("psql")
    if found is None:
        pytest.fail("these tests need psql: apt-get install postgresql-client")
    return found


def read_shipped(name: str) -> str:
    return (POSTGRES / name).read_text()


@pytest.fixture
def bare_warehouse(pg: dict[str, object]) -> Iterator[Warehouse]:
    """A new database, PUBLIC's default grants on it revoked (so that only what roles.sql
    grants counts); the roles are not made yet (:meth:`Warehouse.make_roles`)."""
    suffix = f"{os.getpid()}_{next(_counter)}"
    found = Warehouse(
        name=f"wh_{suffix}",
        admin_url=database_url(str(pg["url"]), f"wh_{suffix}"),
        loader=f"drip_loader_{suffix}",
        analyst=f"drip_analyst_{suffix}",
    )
    admin: Engine = pg["admin"]  # type: ignore[assignment]
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{found.name}"'))
    try:
        found.psql(
            f'REVOKE ALL ON DATABASE "{found.name}" FROM PUBLIC;\n'
            "REVOKE ALL ON SCHEMA public FROM PUBLIC;\n"
        )
        yield found
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{found.name}" WITH (FORCE)'))
            conn.execute(sa.text(f"DROP ROLE IF EXISTS {found.loader}"))
            conn.execute(sa.text(f"DROP ROLE IF EXISTS {found.analyst}"))


@pytest.fixture
def warehouse(bare_warehouse: Warehouse) -> Warehouse:
    """:func:`bare_warehouse` with the roles of roles.sql."""
    bare_warehouse.make_roles()
    return bare_warehouse


def run_cli(
    args: list[str], *, url: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> str:
    """``drip-loader args`` as a process on ``url``; its stdout (it must exit 0)."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DRIP_LOADER_", "SEGMENT_")) and k != "DATABASE_URL"
    }
    done = subprocess.run(
        [str(BIN), *args],
        env={**base, "DRIP_LOADER_DATABASE_URL": url, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert done.returncode == 0, f"drip-loader {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout
