"""Database plumbing: engines, the embedded fallback, session set-up, the asynchronous
connection of the webhook receiver, and driver-error classification and translation.

Driver errors are classified here and nowhere else: a server that refuses the loader (wrong
password, no such database, missing privilege) becomes :class:`DatabaseRefused` (fix the
configuration), connection failures :class:`DatabaseUnavailable` (retry later), everything
else :class:`DatabaseError`;
:func:`retryable` and :func:`refused_data` answer the two questions callers ask of a
SQLSTATE.  URLs in messages are always redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.extensions
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.pool import NullPool

from ..config import Settings, redact_url
from ..errors import ConfigError, DatabaseError, DatabaseRefused, DatabaseUnavailable
from .embedded import embedded_server, psql_binary


def normalize_url(url: str) -> str:
    """Use psycopg2 for plain ``postgresql://`` and libpq-style ``postgres://`` URLs.

    (SQLAlchemy 2.1 would pick psycopg 3 for ``postgresql://``, which is not a dependency.)
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url.removeprefix(prefix)
    return url


def make_engine(url: str, *, null_pool: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the loader's connection defaults.

    Raises:
        ConfigError: the URL cannot be parsed or names a driver that is not installed.
    """
    url = normalize_url(url)
    try:
        return sa.create_engine(
            url,
            connect_args={"connect_timeout": 10, "application_name": "drip-loader"},
            poolclass=NullPool if null_pool else None,
            pool_pre_ping=not null_pool,
            **kwargs,
        )
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ValueError) as exc:
        raise ConfigError(
            f"invalid database URL {redact_url(url)}: {exc}; "
            "expected postgresql://user:password@host:5432/dbname"
        ) from None


def prepared(engine: Engine, name: str, sql: str) -> tuple[str, str]:
    """``PREPARE name AS sql`` and the ``EXECUTE name (...)`` that runs it, for ``engine``'s
    driver: a statement run many times on one connection is parsed and planned once.

    ``sql`` takes ``:name`` binds, as :func:`sqlalchemy.text` does; the EXECUTE takes the
    same names in the driver's parameter style.
    """
    driver = engine.dialect
    assert isinstance(driver, DefaultDialect)
    compiled = sa.text(sql).compile(dialect=type(driver)(paramstyle="numeric_dollar"))
    binds = sa.text(", ".join(f":{bind}" for bind in compiled.positiontup or ()))
    arguments = str(binds.compile(dialect=engine.dialect))
    return f"PREPARE {name} AS {compiled}", f"EXECUTE {name} ({arguments})"


@contextmanager
def open_database(
    settings: Settings, *, announce: Callable[[str], None], null_pool: bool = False
) -> Iterator[Engine]:
    """Yield an engine for the configured database, starting the embedded one if none is.

    The embedded server is stopped (data kept) when the block ends.
    """
    if settings.database_url:
        engine = make_engine(settings.database_url, null_pool=null_pool)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    with embedded_server(settings.home, announce=announce, port=settings.embedded_port) as url:
        engine = make_engine(url, null_pool=null_pool)
        try:
            yield engine
        finally:
            engine.dispose()


# SQLSTATE classes that mean "the server cannot serve us right now" rather than "this
# statement is wrong": connection exceptions, insufficient resources, operator intervention.
_UNAVAILABLE_CLASSES = ("08", "53", "57")
# Serialization failure and deadlock: the same transaction run again will succeed.
_RETRYABLE_CODES = frozenset({"40001", "40P01"})


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error (or of the driver error an SQLAlchemy error wraps)."""
    orig = getattr(exc, "orig", exc)
    code = getattr(orig, "pgcode", None)
    return str(code) if code else None


def retryable(exc: BaseException) -> bool:
    """Whether the transaction that raised ``exc`` will succeed if run again as it is
    (a deadlock or serialization failure)."""
    return sqlstate(exc) in _RETRYABLE_CODES


def refused_data(exc: BaseException) -> bool:
    """Whether ``exc`` (or the driver error behind a :class:`DatabaseError`) is Postgres
    refusing the data itself (SQLSTATE class 22: bad value, bad encoding, ...), not the
    server or the statement failing."""
    return (sqlstate(exc.__cause__ or exc) or "")[:2] == "22"


_AUTHENTICATION = "check the user name and password of the database URL"
_NO_DATABASE = "create it, or fix the database name of the URL"
# (SQLSTATE, words for a health check, what to do).  A refused login carries no SQLSTATE
# through psycopg2 (libpq reports it as text only), so logins are also told apart by the
# server's (English) message; a server speaking another language is taken for unavailable.
_REFUSALS: tuple[tuple[str, str, str], ...] = (
    ("28P01", "authentication failed", _AUTHENTICATION),
    (
        "28000",
        "login not allowed",
        "check the user name of the database URL and the server's pg_hba.conf",
    ),
    ("3D000", "database does not exist", _NO_DATABASE),
    (
        "42501",
        "permission denied",
        "grant the loader's role the privileges it needs on the schema, or use the role that owns it",
    ),
)
_REFUSED_LOGINS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (
        re.compile(
            r"password authentication failed|authentication failed for user|no password supplied"
        ),
        "authentication failed",
        _AUTHENTICATION,
    ),
    (
        re.compile(r'role ".*" does not exist|is not permitted to log in|pg_hba\.conf'),
        "login not allowed",
        "check the user name of the database URL and the server's pg_hba.conf",
    ),
    (re.compile(r'database ".*" does not exist'), "database does not exist", _NO_DATABASE),
    (
        re.compile(r"permission denied for database"),
        "permission denied",
        "grant the role CONNECT on that database, or use another role",
    ),
)
_SERVER_SAYS = re.compile(r"(?:FATAL|ERROR):\s+(.*)")


def _refused(exc: BaseException, first: str) -> DatabaseRefused | None:
    """The refusal ``exc`` is (see :data:`_REFUSALS`), or None when it is something else."""
    code = sqlstate(exc)
    if code is not None:
        for refused_code, reason, advice in _REFUSALS:
            if code == refused_code:
                return DatabaseRefused(
                    f"the database refused a statement: {first}; {advice}", reason=reason
                )
        return None
    text = str(getattr(exc, "orig", exc) or "")
    for pattern, reason, advice in _REFUSED_LOGINS:
        if pattern.search(text):
            said = _SERVER_SAYS.search(text)
            # without "connection to server at <host>, port <n> failed:": it names the cause
            last = text.strip().splitlines()[-1]
            cause = said.group(1) if said else last.rpartition("failed: ")[2]
            cause = cause.strip().removeprefix("fe_sendauth: ")
            return DatabaseRefused(
                f"the database refused the login: {cause}; {advice}", reason=reason
            )
    return None


def translate(exc: sa_exc.DBAPIError | psycopg2.Error, url: str | None = None) -> DatabaseError:
    """Turn a driver error into the loader's error, with a message that says what to do."""
    detail = str(getattr(exc, "orig", exc) or exc).strip().splitlines()
    first = detail[0] if detail else type(exc).__name__
    where = f" at {redact_url(url)}" if url else ""
    refused = _refused(exc, first)
    if refused is not None:
        return refused
    code = sqlstate(exc)
    orig = getattr(exc, "orig", exc)
    unreachable = code is None and isinstance(
        orig, psycopg2.OperationalError | psycopg2.InterfaceError
    )
    invalidated = bool(getattr(exc, "connection_invalidated", False))
    if unreachable or invalidated or (code or "")[:2] in _UNAVAILABLE_CLASSES:
        return DatabaseUnavailable(
            f"cannot reach the database{where}: {first}; check that the server is running and "
            "that --database-url / DRIP_LOADER_DATABASE_URL is right, then run again"
        )
    return DatabaseError(f"database error{where}: {first}")


def translate_driver(exc: Exception, *, connection_lost: bool = False) -> DatabaseError:
    """:func:`translate` for an error the driver raised outside SQLAlchemy (async mode).

    ``connection_lost``: the connection is closed after the error, so whatever the error
    says, the server cannot be used through it now (transient).
    """
    wrapped = sa_exc.DBAPIError.instance(
        None, None, exc, Exception, connection_invalidated=connection_lost
    )
    if not isinstance(wrapped, sa_exc.DBAPIError):  # not a driver error after all
        return DatabaseError(f"database error: {exc}")
    return translate(wrapped)


@contextmanager
def translating(url: str | None = None) -> Iterator[None]:
    """Re-raise SQLAlchemy/driver errors raised in the block as :class:`DatabaseError`."""
    try:
        yield
    except (sa_exc.DBAPIError, psycopg2.Error) as exc:
        # psycopg2's own errors reach here from COPY, which runs on the raw cursor.
        raise translate(exc, url) from exc


def set_search_path(conn: Connection, schema: str) -> None:
    """Make the statements of ``sql/`` (which use bare table names) address ``schema``."""
    conn.execute(sa.text("SELECT set_config('search_path', :schema, false)"), {"schema": schema})


def batch_session(conn: Connection, schema: str) -> None:
    """Set up ``conn`` for the landing, mapping and merging statements on ``schema``.

    Besides the search path: each chunk's statement sorts its rows twice (lock order,
    latest subscriber snapshot); at the default 4 MB of work_mem those sorts spill to disk.
    """
    set_search_path(conn, schema)
    conn.execute(sa.text("SELECT set_config('work_mem', '32MB', false)"))


class AsyncConnection:
    """A psycopg2 connection in asynchronous mode, driven by the event loop.

    The landing statement is the receiver's hot path: run from the loop, a group costs two
    wake-ups (send, answer) and no hand-off to a thread that must win the GIL back from a
    busy loop.  Asynchronous connections are always in autocommit mode, which is what
    one-statement groups want anyway.
    """

    def __init__(self, conn: psycopg2.extensions.connection) -> None:
        self._conn = conn

    @classmethod
    async def open(
        cls, engine: Engine, *, schema: str, timeout: float, prepare: str = ""
    ) -> AsyncConnection:
        """Connect like ``engine`` would, set the search path to ``schema``, then run
        ``prepare`` (a PREPARE statement) if given.

        Raises:
            psycopg2.Error: the connection failed.
            TimeoutError: the server did not answer within ``timeout`` seconds.
        """
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        cparams = {**cparams, "application_name": "drip-loader serve"}
        self = cls(psycopg2.connect(*cargs, **cparams, async_=True))
        try:
            await asyncio.wait_for(self._wait(), timeout)
            await asyncio.wait_for(
                self.execute(
                    "SELECT set_config('search_path', %(schema)s, false)", {"schema": schema}
                ),
                timeout,
            )
            if prepare:
                await asyncio.wait_for(self.execute(prepare, None), timeout)
        except BaseException:
            self.close()
            raise
        return self

    @property
    def closed(self) -> bool:
        return bool(self._conn.closed)

    async def execute(self, sql: str, params: dict[str, Any] | None) -> tuple[Any, ...] | None:
        """Run one statement; return its first row, if it returns rows."""
        cursor = self._conn.cursor()
        try:
            cursor.execute(sql, params)
            await self._wait()
            return cursor.fetchone() if cursor.description is not None else None
        finally:
            cursor.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()

    async def _wait(self) -> None:
        loop = asyncio.get_running_loop()
        conn = self._conn
        while True:
            state = conn.poll()
            if state == psycopg2.extensions.POLL_OK:
                return
            fd = conn.fileno()
            waiter: asyncio.Future[None] = loop.create_future()

            def ready(waiter: asyncio.Future[None] = waiter) -> None:
                if not waiter.done():
                    waiter.set_result(None)

            if state == psycopg2.extensions.POLL_READ:
                loop.add_reader(fd, ready)
                try:
                    await waiter
                finally:
                    loop.remove_reader(fd)
            elif state == psycopg2.extensions.POLL_WRITE:
                loop.add_writer(fd, ready)
                try:
                    await waiter
                finally:
                    loop.remove_writer(fd)
            else:
                raise psycopg2.OperationalError(f"unexpected poll state {state}")


@contextmanager
def no_driver_echo() -> Iterator[None]:
    """Keep psycopg2 from printing an error that it also raises.

    When the server dies in the middle of a COPY, psycopg2 prints the error through
    ``sys.excepthook`` (PyErr_Print) besides raising it; the raised error is what the user
    gets, as one line.  Anything else still reaches the usual hook.
    """
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if not isinstance(value.__cause__ or value, psycopg2.Error):
            previous(kind, value, tb)

    sys.excepthook = hook
    try:
        yield
    finally:
        sys.excepthook = previous


def psql_command(engine: Engine, *, schema: str) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of a psql shell on ``engine``'s database, in ``schema``.

    The password goes in ``PGPASSWORD``, never on the command line (process lists show it).
    """
    url = engine.url.set(drivername="postgresql")
    env = {**os.environ, "PGOPTIONS": f"-c search_path={schema}"}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
        url = url.set(password=None)
    return [psql_binary(), url.render_as_string(hide_password=False)], env
