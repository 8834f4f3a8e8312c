"""Query results as pandas DataFrames: the only module that imports pandas (lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Engine

from .db import translating
from .transform import set_search_path

if TYPE_CHECKING:
    import pandas as pd


def query_frame(engine: Engine, sql: str, *, schema: str) -> pd.DataFrame:
    """Run one analyst query (bare table names resolve in ``schema``) in a read-only transaction."""
    import pandas as pd

    with translating(), engine.connect() as conn:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        set_search_path(conn, schema)
        result = conn.execute(text(sql))
        if not result.returns_rows:
            return pd.DataFrame()
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def render(frame: pd.DataFrame, *, fmt: str) -> str:
    """``frame`` as an aligned table, CSV or JSON (records)."""
    if fmt == "csv":
        return str(frame.to_csv(index=False))
    if fmt == "json":
        return str(frame.to_json(orient="records", date_format="iso", force_ascii=False))
    if frame.empty:
        return "(no rows)"
    return str(frame.to_string(index=False))
