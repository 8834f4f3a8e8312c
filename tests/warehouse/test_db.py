"""loader.warehouse.db: prepared statements for the webhook receiver's hot path."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from loader.warehouse.db import prepared


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
