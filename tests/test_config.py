"""Settings: built from the environment or options, validated, never showing a password."""

from __future__ import annotations

import pytest

from loader.config import Settings, redact_url, validate_schema
from loader.errors import ConfigError


def test_loader_url_wins_over_database_url() -> None:
    env = {"DRIP_LOADER_DATABASE_URL": "postgresql://a@h/x", "DATABASE_URL": "postgresql://b@h/y"}
    assert Settings.from_env(env).database_url == "postgresql://a@h/x"
    assert (
        Settings.from_env({"DATABASE_URL": "postgresql://b@h/y"}).database_url
        == "postgresql://b@h/y"
    )
    assert Settings.from_env({}).database_url is None


def test_options_override_the_environment() -> None:
    env = {
        "DRIP_LOADER_SCHEMA": "envschema",
        "DRIP_LOADER_BATCH_SIZE": "77",
        "DRIP_LOADER_WRITERS": "3",
    }
    settings = Settings.from_env(env, schema="optschema", batch_size=None)
    assert (settings.schema, settings.batch_size, settings.writers) == ("optschema", 77, 3)
    assert Settings.from_env(env, writers=1).writers == 1


@pytest.mark.parametrize(
    "name", ["Drip", "1drip", "drip-eu", "a" * 64, "pg_catalog", "information_schema", "x;y", ""]
)
def test_schema_must_be_a_plain_identifier(name: str) -> None:
    with pytest.raises(ConfigError, match="invalid schema name"):
        validate_schema(name)


def test_bad_numbers_are_config_errors() -> None:
    with pytest.raises(
        ConfigError, match="DRIP_LOADER_BATCH_SIZE must be a whole number, got 'ten'"
    ):
        Settings.from_env({"DRIP_LOADER_BATCH_SIZE": "ten"})
    with pytest.raises(ConfigError, match="batch_size must be at least 1"):
        Settings(batch_size=0)
    with pytest.raises(ConfigError, match="writers must be at least 1"):
        Settings.from_env({"DRIP_LOADER_WRITERS": "0"})


def test_password_never_appears_in_repr_or_redacted_url() -> None:
    settings = Settings(database_url="postgresql://loader:hunter2@db.internal:5432/wh")
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)
    assert (
        redact_url("postgresql://loader:hunter2@db.internal:5432/wh")
        == "postgresql://loader:***@db.internal:5432/wh"
    )


_POSTGRES_ONLY = (
    "drip-loader works with PostgreSQL only: postgresql://user:password@host:5432/dbname "
    "(or no URL at all for the embedded server)"
)


@pytest.mark.parametrize(
    ("url", "what"),
    [
        ("mysql://x", "is a mysql:// URL"),
        ("sqlite:///x", "is a sqlite:// URL"),
        ("http://db.example.com/x", "is a http:// URL"),
        ("postgresql+asyncpg://u:pw@h/db", "is a postgresql+asyncpg:// URL"),
        ("hunter2-garbage", "is not a URL"),
        ("", "is not a URL"),
    ],
)
@pytest.mark.parametrize("variable", ["DRIP_LOADER_DATABASE_URL", "DATABASE_URL"])
def test_a_url_that_is_not_postgresql_is_refused_naming_where_it_came_from(
    url: str, what: str, variable: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({variable: url} if url else {}, database_url=url or " ")
    source = "--database-url"
    assert str(refused.value) == f"{source} {what}: {_POSTGRES_ONLY}"
    if url:
        with pytest.raises(ConfigError) as refused:
            Settings.from_env({variable: url})
        assert str(refused.value) == f"{variable} {what}: {_POSTGRES_ONLY}"
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    ["postgresql://u:pw@h:5432/db", "postgres://u@h/db", "postgresql+psycopg2://u@h/db"],
)
def test_postgresql_urls_are_accepted(url: str) -> None:
    assert Settings.from_env({"DATABASE_URL": url}).database_url == url
