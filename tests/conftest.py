"""Fixtures: one real PostgreSQL per session, a fresh database per test (never a mock)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from loader.config import Settings
from loader.warehouse import migrate
from loader.warehouse.db import make_engine
from tests.support.postgres import (
    TEMPLATE,
    LocalServer,
    database_url,
    debian_bin,
    postgres_server,
)

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg() -> Iterator[dict[str, object]]:
    """The session's server: ``{"url": admin URL, "how": where it came from, "handle": ...}``."""
    with postgres_server() as (url, how, handle):
        admin = make_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)'))
            conn.execute(
                sa.text(f"CREATE DATABASE \"{TEMPLATE}\" TEMPLATE template0 ENCODING 'UTF8'")
            )
        template = make_engine(database_url(url, TEMPLATE), null_pool=True)
        migrate.upgrade(template, schema="drip")
        template.dispose()
        yield {"url": url, "how": how, "handle": handle, "admin": admin}
        admin.dispose()


def _new_database(pg: dict[str, object], template: str) -> Iterator[str]:
    name = f"t_{os.getpid()}_{next(_counter)}"
    admin: Engine = pg["admin"]  # type: ignore[assignment]
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield database_url(str(pg["url"]), name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def db_url(pg: dict[str, object]) -> Iterator[str]:
    """A fresh database already migrated to head in schema ``drip``."""
    yield from _new_database(pg, TEMPLATE)


@pytest.fixture
def empty_db_url(pg: dict[str, object]) -> Iterator[str]:
    """A fresh, empty database (no schema)."""
    yield from _new_database(pg, "template0")


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_url, home=tmp_path / "home")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def empty_engine(empty_db_url: str) -> Iterator[Engine]:
    """An engine on a fresh database that was never migrated (migration tests)."""
    eng = make_engine(empty_db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def stoppable(pg: dict[str, object]) -> Iterator[tuple[str, LocalServer]]:
    """A migrated database on a server the test may stop and start (outage tests).

    The session's server when it is one of ours; otherwise (a URL or a container) a
    private one from Debian's binaries, so these tests never depend on where the session's
    server came from.
    """
    handle = pg["handle"]
    if isinstance(handle, LocalServer):
        for url in _new_database(pg, TEMPLATE):
            yield url, handle
        return
    bindir = debian_bin()
    if bindir is None:
        pytest.fail("outage tests need PostgreSQL's server binaries: apt-get install postgresql")
    server = LocalServer(bindir)
    try:
        url = server.start()
        engine = make_engine(url, null_pool=True)
        migrate.upgrade(engine, schema="drip")
        engine.dispose()
        yield url, server
    finally:
        server.stop()
