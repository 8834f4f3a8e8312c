"""loader.warehouse.db: prepared statements for the webhook receiver's hot path, and the
classification of driver errors every message depends on."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from loader.errors import DatabaseError, DatabaseRefused, DatabaseUnavailable
from loader.warehouse.db import (
    make_engine,
    prepared,
    refused_data,
    retryable,
    sqlstate,
    translate,
    translating,
)
from tests.conftest import Login


def test_a_prepared_statement_takes_its_binds_by_name_even_when_one_is_used_twice(
    empty_engine: Engine,
) -> None:
    prepare, execute = prepared(
        empty_engine,
        "drip_test",
        "SELECT CAST(:word AS text) || '/' || CAST(:n AS text) || '/' || CAST(:word AS text)",
    )
    assert prepare.startswith("PREPARE drip_test AS SELECT CAST($1 AS text)")
    raw = empty_engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(prepare)
        # the values are quoted by the driver, never formatted into the statement
        cursor.execute(execute, {"n": 7, "word": "it's"})
        assert cursor.fetchone() == ("it's/7/it's",)
    finally:
        raw.close()


# SQLSTATE -> (the loader's error, retryable, refused data), raised by a real server.
CLASSIFIED = [
    ("08006", DatabaseUnavailable, False, False),  # connection failure
    ("53300", DatabaseUnavailable, False, False),  # too many connections
    ("57P01", DatabaseUnavailable, False, False),  # admin shutdown
    ("22P02", DatabaseError, False, True),  # invalid text representation
    ("22021", DatabaseError, False, True),  # bad encoding
    ("40001", DatabaseError, True, False),  # serialization failure
    ("40P01", DatabaseError, True, False),  # deadlock
    ("42P01", DatabaseError, False, False),  # undefined table
    ("23505", DatabaseError, False, False),  # unique violation
]


@pytest.mark.parametrize(("code", "error", "again", "data"), CLASSIFIED, ids=lambda v: str(v))
def test_sqlstate_classification(
    empty_engine: Engine, code: str, error: type[DatabaseError], again: bool, data: bool
) -> None:
    with empty_engine.connect() as conn, pytest.raises(sa_exc.DBAPIError) as caught:
        conn.exec_driver_sql(
            f"DO $$ BEGIN RAISE EXCEPTION 'raised {code}' USING ERRCODE = '{code}'; END $$"
        )
    assert sqlstate(caught.value) == code
    translated = translate(caught.value)
    assert type(translated) is error
    assert (retryable(caught.value), refused_data(caught.value)) == (again, data)
    if error is DatabaseUnavailable:
        assert "check that the server is running" in str(translated)
    # what callers hold after translating(): the driver error stays behind it
    try:
        raise translated from caught.value
    except DatabaseError as exc:
        assert refused_data(exc) == data


def test_an_unreachable_server_is_unavailable_without_a_sqlstate() -> None:
    engine = make_engine("postgresql://u:secret-pw@127.0.0.1:1/x", null_pool=True)
    with pytest.raises(sa_exc.OperationalError) as caught:
        engine.connect()
    translated = translate(caught.value, "postgresql://u:secret-pw@127.0.0.1:1/x")
    assert type(translated) is DatabaseUnavailable
    assert sqlstate(caught.value) is None
    assert "secret-pw" not in str(translated) and "127.0.0.1:1/x" in str(translated)


def _error_of(url: str, sql: str = "SELECT 1") -> DatabaseError:
    engine = make_engine(url, null_pool=True)
    try:
        with pytest.raises(DatabaseError) as raised, translating(), engine.connect() as conn:
            conn.execute(sa.text(sql))
    finally:
        engine.dispose()
    return raised.value


def test_refusals_outages_and_statement_errors_are_told_apart(login: Login) -> None:
    url = sa.engine.make_url(login.url)
    wrong = _error_of(url.set(password="wrong-password-0123").render_as_string(False))
    assert isinstance(wrong, DatabaseRefused) and wrong.reason == "authentication failed"
    assert str(wrong) == (
        f'the database refused the login: password authentication failed for user "{login.role}"'
        "; check the user name and password of the database URL"
    )
    nobody = _error_of(url.set(username="no_such_role_x").render_as_string(False))
    assert isinstance(nobody, DatabaseRefused) and nobody.reason in (
        "authentication failed",  # scram: Postgres does not say the role is missing
        "login not allowed",
    )
    missing = _error_of(url.set(database="no_such_db").render_as_string(False))
    assert isinstance(missing, DatabaseRefused) and missing.reason == "database does not exist"
    with login.admin.connect() as conn:
        conn.execute(sa.text(f"ALTER ROLE {login.role} NOSUPERUSER"))
    denied = _error_of(login.url, "SELECT * FROM drip._runs")
    assert isinstance(denied, DatabaseRefused) and denied.reason == "permission denied"
    assert str(denied).startswith(
        "the database refused a statement: permission denied for schema drip; grant "
    )
    down = _error_of(url.set(port=1).render_as_string(False))
    assert type(down) is DatabaseUnavailable and down.reason == "database unavailable"
    bad_value = _error_of(login.url, "SELECT 'x'::int")
    assert type(bad_value) is DatabaseError and refused_data(bad_value)
    assert login.password not in "".join(map(str, (wrong, nobody, missing, denied, down)))
