"""The ``_runs`` ledger: one row per run (``load``, ``serve``, ``emit``, ``drip sync``,
``rejects retry``), from its start to its end.

A run is recorded ``running`` when it starts (a long one, ``serve``, records its counts
as it goes: :meth:`Run.update`) and ends ``completed``, ``failed`` (a
:class:`LoaderError`: what the loader reports as "could not complete") or ``interrupted``
(Ctrl-C, SIGTERM, or an exception nobody expected), with its counts and the reason.

A process killed outright (SIGKILL, out of memory, the machine gone) cannot write its end,
so each run also holds a session-level advisory lock, keyed by its load id, on a
connection of its own for as long as it runs: Postgres drops the lock with the session, and
:func:`is_alive` probes it.  ``status`` thereby tells a run still going from one whose
process is gone, without a schema change.  A database restart ends that session too: a
long run (``serve``) calls :meth:`Run.hold` when it reconnects, which opens a new session
and takes the lock again; and the end is written on a new session if the old one is gone.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from sqlalchemy import Table, func, insert, text, update
from sqlalchemy.engine import Connection, Engine

from ..errors import DatabaseUnavailable, LoaderError, Terminated
from .db import translating
from .tables import build_metadata

LOCK_CLASS = 0x64726970
"""First key of every run's advisory lock ('drip'); the second is ``hashtext(load_id)``."""

_LOCK = text("SELECT pg_advisory_lock(:class, hashtext(:load_id))")
_PROBE = text("SELECT pg_try_advisory_xact_lock(:class, hashtext(:load_id))")
# Whether this session holds the run's lock (it does unless the session is new).
_HELD = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
    "AND classid = :class AND objid = hashtext(:load_id)::oid AND granted"
)


def _runs_table(schema: str) -> Table:
    return build_metadata(schema).tables[f"{schema}._runs"]


class Run:
    """One ``_runs`` row and the connection holding its advisory lock (see :func:`start_run`).

    Thread-safe: a receiver's workers may call :meth:`hold` at once.
    """

    def __init__(self, engine: Engine, conn: Connection, table: Table, load_id: str) -> None:
        self._engine = engine
        self._conn = conn
        self._table = table
        self.load_id = load_id
        self._ended = False
        # update() runs in a background thread of serve while finish() may come at any time
        self._lock = threading.Lock()

    def hold(self) -> None:
        """Make sure this run's session still holds its lock; after a database restart,
        open a new session and take the lock again (``status`` shows the run alive).

        Raises:
            DatabaseError: the database cannot be reached (or refuses us) yet.
        """
        with self._lock:
            if not self._ended:
                self._session()

    def update(self, counts: dict[str, Any]) -> None:
        """Record the counts so far of a run still going (``status`` shows them live).

        Raises:
            DatabaseError: the database failed (the run goes on; its end is still recorded).
        """
        with self._lock:
            if self._ended:
                return
            with translating():
                conn = self._session()
                with conn.begin():
                    conn.execute(
                        update(self._table)
                        .where(self._table.c.load_id == self.load_id)
                        .values(counts=counts)
                    )

    def finish(self, counts: dict[str, Any], *, error: BaseException | None = None) -> None:
        """Record the end: ``completed`` without ``error``, else ``failed`` for a
        :class:`LoaderError` and ``interrupted`` for anything else; then drop the lock.

        On a new session when the run's own was lost (a database restart).  Best effort
        when ``error`` is given (the database may be why the run failed); otherwise a
        failure to record is raised.
        """
        with self._lock:  # never beside an update() on the same connection
            if self._ended:
                return
            self._ended = True
            status, reason = outcome(error)
            try:
                with translating():
                    conn = self._session()
                    with conn.begin():
                        conn.execute(
                            update(self._table)
                            .where(self._table.c.load_id == self.load_id)
                            .values(
                                status=status, finished_at=func.now(), counts=counts, error=reason
                            )
                        )
            except LoaderError:
                if error is None:
                    raise
            finally:
                self._conn.close()  # ends the session: the advisory lock goes with it

    def _session(self) -> Connection:
        """The run's connection, reconnected (and the lock taken again) if it was lost."""
        params = {"class": LOCK_CLASS, "load_id": self.load_id}
        if not (self._conn.closed or self._conn.invalidated):
            try:
                with translating():
                    held: int = self._conn.execute(_HELD, params).scalar_one()
                    self._conn.rollback()
                    if not held:  # never expected: a live session keeps its lock
                        self._conn.execute(_LOCK, params)
                        self._conn.commit()
                return self._conn
            except DatabaseUnavailable:
                pass
        with contextlib.suppress(Exception):
            self._conn.close()
        self._conn = _locked_connection(self._engine, self.load_id)
        return self._conn


def outcome(error: BaseException | None) -> tuple[str, str | None]:
    """The status and error text a run ends with, after ``error`` (None: it completed)."""
    if error is None:
        return "completed", None
    if isinstance(error, LoaderError):
        return "failed", str(error)
    if isinstance(error, Terminated):
        return "interrupted", "interrupted by SIGTERM"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", "interrupted by SIGINT (Ctrl-C)"
    return "interrupted", f"stopped by an unexpected error: {type(error).__name__}: {error}"


def start_run(
    engine: Engine, *, schema: str, load_id: str, command: str, sources: str | None
) -> Run:
    """Take the run's advisory lock on a connection of its own and record it ``running``.

    Raises:
        DatabaseError: the database failed (nothing is recorded then).
    """
    table = _runs_table(schema)
    with translating():
        conn = _locked_connection(engine, load_id)
        try:
            with conn.begin():
                conn.execute(
                    insert(table).values(
                        load_id=load_id, command=command, status="running", sources=sources
                    )
                )
        except BaseException:
            conn.close()
            raise
    return Run(engine, conn, table, load_id)


def _locked_connection(engine: Engine, load_id: str) -> Connection:
    """A connection of its own holding the advisory lock of run ``load_id``."""
    with translating():
        conn = engine.connect()
        try:
            conn.execute(_LOCK, {"class": LOCK_CLASS, "load_id": load_id})
            conn.commit()
        except BaseException:
            conn.close()
            raise
    return conn


@contextmanager
def recorded_run(
    engine: Engine,
    *,
    schema: str,
    load_id: str,
    command: str,
    sources: str | None,
    counts: Callable[[], dict[str, Any]],
) -> Iterator[Run]:
    """:func:`start_run`, ended with ``counts()`` by whatever ends the block: its end,
    an error, Ctrl-C, SIGTERM or a bug is recorded (see :func:`outcome`), then raised on.

    While the block runs in the main thread, SIGTERM raises :class:`Terminated` in it.
    """
    run = start_run(engine, schema=schema, load_id=load_id, command=command, sources=sources)
    with _sigterm_raises():
        try:
            yield run
        except BaseException as exc:
            run.finish(counts(), error=exc)
            raise
        run.finish(counts())


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def is_alive(conn: Connection, load_id: str) -> bool:
    """Whether the process of run ``load_id`` still holds its lock (is still going).

    Takes the lock for the rest of ``conn``'s transaction when it is free: call it in a
    transaction that ends soon (``status``'s read).
    """
    got: bool = conn.execute(_PROBE, {"class": LOCK_CLASS, "load_id": load_id}).scalar_one()
    return not got
