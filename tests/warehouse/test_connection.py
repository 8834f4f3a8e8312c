"""How a BI tool connects: named from the settings, the password only when asked for."""

from __future__ import annotations

from pathlib import Path

from loader.config import Settings
from loader.warehouse.connection import connection_info


def test_a_database_url_is_taken_apart_and_its_password_kept_back(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql://loader:s3cret-pw@db.internal:6432/warehouse?sslmode=require",
        home=tmp_path,
    )
    info = connection_info(settings)
    assert (info.host, info.port, info.database, info.user, info.ssl, info.password) == (
        "db.internal",
        6432,
        "warehouse",
        "loader",
        "sslmode=require",
        None,
    )
    assert "s3cret-pw" not in repr(info)
    assert connection_info(settings, reveal=True).password == "s3cret-pw"
    bare = connection_info(Settings(database_url="postgres://h/db", home=tmp_path))
    assert (bare.port, bare.user, bare.password_from) == (
        5432,
        None,
        "none in the database URL (the server may take ~/.pgpass or trust)",
    )


def test_the_embedded_server_without_a_port_cannot_be_reached_and_says_how(
    tmp_path: Path,
) -> None:
    info = connection_info(Settings(home=tmp_path), reveal=True)
    assert (info.host, info.port, info.user, info.password) == (None, None, None, None)
    assert info.notes == [
        "The embedded server listens on its Unix socket only: a BI tool cannot connect. Set "
        "DRIP_LOADER_EMBEDDED_PORT (e.g. 5433) where drip-loader serve runs, and restart it."
    ]
    stopped = connection_info(Settings(home=tmp_path, embedded_port=5433))
    assert (stopped.host, stopped.port, stopped.user) == ("127.0.0.1", 5433, "drip_reader")
    assert stopped.password_from == (
        f"the file {tmp_path / 'reader-password'}, written when the server first starts with "
        "the port"
    )
    assert stopped.notes[0].startswith("The embedded server is not running: ")
