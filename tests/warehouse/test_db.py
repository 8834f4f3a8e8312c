"""loader.warehouse.db: prepared statements for the webhook receiver's hot path, and the
classification of driver errors every message depends on."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from loader.errors import DatabaseError, DatabaseUnavailable
from loader.warehouse.db import (
    make_engine,
    prepared,
    refused_data,
    retryable,
    sqlstate,
    translate,
)


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
