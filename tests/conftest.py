"""Fixtures: one real PostgreSQL per session, a fresh database per test (never a mock)."""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
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


PASSWORD_GROUP = "drip_password_login"
"""Members of this role must give their password over TCP (:func:`password_server`)."""


@pytest.fixture(scope="session")
def password_server(pg: dict[str, object]) -> Iterator[str]:
    """Admin URL of a server that checks the password of :data:`PASSWORD_GROUP`'s members
    (scram over TCP, as in production), with the migrated template database.

    The session's server when it is one of ours; otherwise a private one (a server from the
    environment or a container may trust everyone, or may not be ours to configure).
    """
    handle = pg["handle"]
    own = not isinstance(handle, LocalServer)
    if own:
        bindir = debian_bin()
        if bindir is None:
            pytest.fail(
                "password tests need PostgreSQL's server binaries: apt-get install postgresql"
            )
        server = LocalServer(bindir)
        url = server.start()
    else:
        assert isinstance(handle, LocalServer)
        server, url = handle, str(pg["url"])
    try:
        admin = make_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_roles WHERE rolname = :name"), {"name": PASSWORD_GROUP}
            ).first()
            if not exists:
                conn.execute(sa.text(f"CREATE ROLE {PASSWORD_GROUP} NOLOGIN"))
            if own:
                conn.execute(sa.text(f'CREATE DATABASE "{TEMPLATE}" TEMPLATE template0'))
        admin.dispose()
        if own:
            template = make_engine(database_url(url, TEMPLATE), null_pool=True)
            migrate.upgrade(template, schema="drip")
            template.dispose()
        server.check_passwords(PASSWORD_GROUP)
        yield url
    finally:
        if own:
            server.stop()


@dataclass
class Login:
    """A role that logs in with a password, and its URL on a fresh migrated database."""

    role: str
    password: str = field(repr=False)
    url: str = field(repr=False)
    database: str
    admin: Engine


@pytest.fixture
def login(password_server: str) -> Iterator[Login]:
    """A superuser role with a password (checked) on a fresh migrated database."""
    admin = make_engine(password_server, isolation_level="AUTOCOMMIT")
    role = f"drip_pw_{os.getpid()}_{next(_counter)}"
    password = secrets.token_urlsafe(16)
    database = f"{role}_db"
    with admin.connect() as conn:
        conn.execute(
            sa.text(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD :pw IN ROLE {PASSWORD_GROUP}"),
            {"pw": password},
        )
        conn.execute(sa.text(f'CREATE DATABASE "{database}" TEMPLATE "{TEMPLATE}"'))
    url = sa.engine.make_url(database_url(password_server, database))
    url = url.set(username=role, password=password)
    try:
        yield Login(role, password, url.render_as_string(hide_password=False), database, admin)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            conn.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()
