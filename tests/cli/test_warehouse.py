"""The warehouse commands as a user meets them: ``connection``, and a database that refuses
the loader (one line naming the cause, never the password)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from loader.cli.app import app
from tests.conftest import Login

CLEAN = {"DRIP_LOADER_DATABASE_URL": None, "DATABASE_URL": None, "DRIP_LOADER_EMBEDDED_PORT": None}


def test_connection_to_a_database_url_keeps_the_password_back() -> None:
    url = "postgresql://loader:s3cret-pw@db.internal:6432/warehouse?sslmode=require"
    env = {**CLEAN, "DRIP_LOADER_DATABASE_URL": url}
    shown = CliRunner().invoke(app, ["connection"], env=env)
    assert (shown.exit_code, shown.stdout, shown.stderr) == (
        0,
        "Connect a BI tool (Metabase, DBeaver, ...) with:\n"
        "  host      db.internal\n"
        "  port      6432\n"
        "  database  warehouse\n"
        "  user      loader\n"
        "  password  from the database URL (--database-url, DRIP_LOADER_DATABASE_URL or "
        "DATABASE_URL) (--show-password prints it)\n"
        "  SSL       sslmode=require\n"
        "  schema    drip\n"
        "Give a BI tool a read-only role of its own rather than the loader's.\n",
        "",
    )
    revealed = CliRunner().invoke(app, ["connection", "--show-password"], env=env)
    assert "  password  s3cret-pw\n" in revealed.stdout


def test_connection_to_the_embedded_server_says_how_to_open_it(tmp_path: Path) -> None:
    env = {**CLEAN, "DRIP_LOADER_HOME": str(tmp_path)}
    closed = CliRunner().invoke(app, ["connection"], env=env)
    assert (closed.exit_code, closed.stdout) == (
        0,
        "The embedded server listens on its Unix socket only: a BI tool cannot connect. Set "
        "DRIP_LOADER_EMBEDDED_PORT (e.g. 5433) where drip-loader serve runs, and restart it.\n",
    )
    (tmp_path / "reader-password").write_text("the-reader-secret\n")
    env["DRIP_LOADER_EMBEDDED_PORT"] = "5433"
    shown = CliRunner().invoke(app, ["connection"], env=env)
    assert (shown.exit_code, shown.stdout) == (
        0,
        "Connect a BI tool (Metabase, DBeaver, ...) with:\n"
        "  host      127.0.0.1\n"
        "  port      5433\n"
        "  database  postgres\n"
        "  user      drip_reader\n"
        f"  password  from the file {tmp_path / 'reader-password'} (--show-password prints "
        "it)\n"
        "  SSL       off (the port listens on 127.0.0.1 only)\n"
        "  schema    drip\n"
        "The embedded server is not running: it runs while a drip-loader command does; keep "
        "drip-loader serve running (with DRIP_LOADER_EMBEDDED_PORT set) for a BI tool.\n",
    )
    assert "the-reader-secret" not in shown.output
    revealed = CliRunner().invoke(
        app, ["connection", "--show-password", "--format", "json"], env=env
    )
    assert '"password": "the-reader-secret"' in revealed.stdout


def test_a_port_that_is_no_port_is_one_line() -> None:
    env = {**CLEAN, "DRIP_LOADER_EMBEDDED_PORT": "70000"}
    result = CliRunner().invoke(app, ["status"], env=env)
    assert (result.exit_code, result.output) == (
        1,
        "Error: DRIP_LOADER_EMBEDDED_PORT must be a TCP port from 1 to 65535, got 70000\n",
    )


@pytest.mark.parametrize("command", [["status"], ["serve", "--port", "0"]])
def test_a_wrong_password_is_one_line_naming_the_cause(login: Login, command: list[str]) -> None:
    url = sa.engine.make_url(login.url).set(password="not-the-password-0123")
    env = {
        **CLEAN,
        "DRIP_LOADER_DATABASE_URL": url.render_as_string(hide_password=False),
        "DRIP_LOADER_WEBHOOK_TOKEN": "test-token-Abc123_xyz-0123456789",
    }
    result = CliRunner().invoke(app, command, env=env)
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f'Error: the database refused the login: password authentication failed for user "'
        f'{login.role}"; check the user name and password of the database URL\n',
    )
