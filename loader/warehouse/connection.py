"""How another client (a BI tool, a SQL editor) connects to the warehouse.

``drip-loader connection`` prints it.  Nothing is started and nothing is connected: the
facts come from the settings and, for the embedded server, from its data folder.  The
password is named by where it is kept, and given only when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..results import Record
from .embedded import LOOPBACK, READER_ROLE, embedded_state, password_file, reader_password


@dataclass(frozen=True)
class ConnectionInfo(Record):
    """What a client needs to connect, and what to know first."""

    host: str | None
    """None: nothing can connect over TCP (the embedded server without a port)."""
    port: int | None
    database: str | None
    user: str | None
    password_from: str
    """Where the password is kept (never the password itself)."""
    ssl: str
    schema: str
    password: str | None = field(default=None, repr=False)
    """The password itself, only when asked for (``reveal``)."""
    notes: list[str] = field(default_factory=list)
    """What to know before connecting (is the embedded server running, ...)."""

    def as_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "user": self.user,
            "password_from": self.password_from,
            "ssl": self.ssl,
            "schema": self.schema,
            "notes": self.notes,
        }
        if self.password is not None:
            values["password"] = self.password
        return values

    def lines(self) -> list[str]:
        if self.host is None:
            return list(self.notes)
        password = (
            self.password
            if self.password is not None
            else f"from {self.password_from} (--show-password prints it)"
        )
        return [
            "Connect a BI tool (Metabase, DBeaver, ...) with:",
            f"  host      {self.host}",
            f"  port      {self.port}",
            f"  database  {self.database}",
            f"  user      {self.user}",
            f"  password  {password}",
            f"  SSL       {self.ssl}",
            f"  schema    {self.schema}",
            *self.notes,
        ]


def connection_info(settings: Settings, *, reveal: bool = False) -> ConnectionInfo:
    """How a client connects to the warehouse of ``settings``.

    Args:
        settings: the database (URL or embedded) and schema.
        reveal: also give the password.
    """
    if settings.database_url:
        return _from_url(settings, reveal=reveal)
    return _embedded(settings, reveal=reveal)


def _from_url(settings: Settings, *, reveal: bool) -> ConnectionInfo:
    from sqlalchemy.engine import make_url

    assert settings.database_url is not None
    url = make_url(settings.database_url)
    query = url.query.get("sslmode")
    return ConnectionInfo(
        host=url.host or str(url.query.get("host") or "localhost"),
        port=url.port or 5432,
        database=url.database,
        user=url.username,
        password_from="the database URL (--database-url, DRIP_LOADER_DATABASE_URL or DATABASE_URL)"
        if url.password
        else "none in the database URL (the server may take ~/.pgpass or trust)",
        ssl=f"sslmode={query}" if query else "as the server offers (libpq's sslmode=prefer)",
        schema=settings.schema,
        password=str(url.password) if reveal and url.password else None,
        notes=["Give a BI tool a read-only role of its own rather than the loader's."],
    )


def _embedded(settings: Settings, *, reveal: bool) -> ConnectionInfo:
    home, port = settings.home, settings.embedded_port
    state = embedded_state(home)
    notes: list[str] = []
    if port is None:
        notes.append(
            "The embedded server listens on its Unix socket only: a BI tool cannot connect. "
            "Set DRIP_LOADER_EMBEDDED_PORT (e.g. 5433) where drip-loader serve runs, and "
            "restart it."
        )
    elif state.listening == port:
        notes.append(f"The embedded server is running and listening on {LOOPBACK}:{port}.")
    elif state.running:
        notes.append(
            "The embedded server is running for another drip-loader command, which started it "
            "without the port: it listens from its next start."
        )
    else:
        notes.append(
            "The embedded server is not running: it runs while a drip-loader command does; "
            "keep drip-loader serve running (with DRIP_LOADER_EMBEDDED_PORT set) for a BI tool."
        )
    secret = password_file(home)
    kept = reader_password(home)
    return ConnectionInfo(
        host=LOOPBACK if port is not None else None,
        port=port,
        database="postgres",
        user=READER_ROLE if port is not None else None,
        password_from=f"the file {secret}"
        if kept
        else f"the file {secret}, written when the server first starts with the port",
        ssl="off (the port listens on 127.0.0.1 only)",
        schema=settings.schema,
        password=kept if reveal and port is not None else None,
        notes=notes,
    )
