"""Results render themselves the same three ways (``--format table|csv|json``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from loader.cli.render import Format, text
from loader.counts import Counts
from loader.results import Rows

ROWS = Rows(
    ("name", "n", "rate", "at", "tags", "on"),
    [
        ("a", 1, 0.5, datetime(2026, 10, 1, 12, tzinfo=UTC), ("x", "y"), True),
        (None, 22, None, None, (), False),
        ("ccc", 3, Decimal("1.50"), None, ("z",), None),
    ],
)


def test_a_table_aligns_text_left_and_numbers_right_with_null_blank() -> None:
    assert text(ROWS, Format.table).splitlines() == [
        "name   n  rate  at                         tags  on",
        "a      1   0.5  2026-10-01T12:00:00+00:00  x, y  true",
        "      22                                         false",
        "ccc    3  1.50                             z",
    ]


def test_a_table_without_rows_says_so_and_its_csv_keeps_the_header() -> None:
    empty = Rows(("day", "events"))
    assert text(empty, Format.table) == "(no rows)\n"
    assert text(empty, Format.csv) == "day,events\n"


def test_a_tables_csv_has_null_empty() -> None:
    assert text(ROWS, Format.csv).splitlines() == [
        "name,n,rate,at,tags,on",
        'a,1,0.5,2026-10-01T12:00:00+00:00,"x, y",true',
        ",22,,,,false",
        "ccc,3,1.50,,z,",
    ]


def test_a_tables_json_is_the_list_of_its_rows() -> None:
    assert json.loads(text(ROWS, Format.json)) == [
        {
            "name": "a",
            "n": 1,
            "rate": 0.5,
            "at": "2026-10-01T12:00:00+00:00",
            "tags": ["x", "y"],
            "on": True,
        },
        {"name": None, "n": 22, "rate": None, "at": None, "tags": [], "on": False},
        {"name": "ccc", "n": 3, "rate": 1.5, "at": None, "tags": ["z"], "on": None},
    ]


def test_a_records_csv_is_one_row_per_fact_named_by_its_path() -> None:
    counts = Counts(read=3, landed=2, rejected=1)
    counts.rows_added.update({"tracks": 2, "email_opened": 2})
    rows = text(counts, Format.csv).splitlines()
    assert rows[:4] == ["name,value", "read,3", "landed,2", "duplicates,0"]
    assert {"rows_added.tracks,2", "rows_added.email_opened,2", "rejected,1"} <= set(rows)
    assert json.loads(text(counts, Format.json)) == counts.as_dict()
