"""``drip-loader report attribution``: which emails led to conversions, figures computed by hand.

Drip side (loaded through the real loader), emails 7001 "Spring sale" and 7002 "Restock"::

    C1 ann  clicks 7001  10-01 10:00        C5 dee  clicks 7001  10-03 09:00
    C2 ann  clicks 7002  10-02 10:00        C6 eve  clicks 7001  10-01 09:00
    C3 bob  clicks 7001  10-01 12:00        C7 gus  clicks 7002  09-20 10:00
    C4 cat  clicks 7002  10-02 08:00        P1 ann  opens  7001  10-02 11:00

ann, cat, eve and gus have a user id; bob and dee do not (Drip's anonymous_id is their
email).  Website side (schema ``website``, Segment's layout), ``order_completed``::

    O1 user u_ann                          10-03 10:00  100  rule 1 -> C2 (later than C1), 24 h
    O2 anon anon-bob, email ' Bob@Example.COM '  10-02 00:00  50  rule 2 -> C3, 12 h
    O3 anon anon-cat (identify: ' CAT@example.com ')  10-02 20:00  30  rule 3 -> C4, 12 h
    O4 anon dee@example.com                10-04 09:00   20  rule 4 -> C5, 24 h
    O5 user u_gus                          10-01 10:00   70  C7 is 11 days before: none
    O6 user u_zed (no Drip subscriber)     10-02 15:00    5  none
    O7 user u_ann, anon dee@example.com    10-03 12:00   10  rule 1 (C2, 26 h) beats rule 4 (C5)

So with clicks and the default 7 days: 7001 has touches C1 C3 C5 C6 (4 people) and
converts O2 O4 (bob, dee: 12 h and 24 h); 7002 has C2 C4 C7 (3 people) and converts O1 O3
O7 (ann, cat: 24, 12, 26 h); O5 and O6 are unattributed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from loader.analyst.catalog import parse_window
from loader.cli.app import app
from loader.config import Settings
from loader.errors import ConfigError
from loader.pipeline.run import run_pipeline
from tests.analyst_cases import CLICKED, OPENED, webhook, write_ndjson

runner = CliRunner()


def subscriber(name: str, *, user_id: str | None, email: str | None = None) -> dict[str, Any]:
    return {
        "id": f"sub_{name}",
        "email": email or f"{name}@example.com",
        "user_id": user_id,
        "status": "active",
        "tags": [],
        "custom_fields": {},
    }


ANN = subscriber("ann", user_id="u_ann")
BOB = subscriber("bob", user_id=None)
CAT = subscriber("cat", user_id="u_cat")
DEE = subscriber("dee", user_id=None)
EVE = subscriber("eve", user_id="u_eve")
GUS = subscriber("gus", user_id="u_gus")
SALE = {"email_id": "7001", "email_subject": "Spring sale"}
RESTOCK = {"email_id": "7002", "email_subject": "Restock"}
URL = "https://shop.example.com/"

DRIP = [
    webhook(CLICKED, ANN, "2026-10-01T10:00:00Z", **SALE, url=URL),  # C1
    webhook(CLICKED, ANN, "2026-10-02T10:00:00Z", **RESTOCK, url=URL),  # C2
    webhook(CLICKED, BOB, "2026-10-01T12:00:00Z", **SALE, url=URL),  # C3
    webhook(CLICKED, CAT, "2026-10-02T08:00:00Z", **RESTOCK, url=URL),  # C4
    webhook(CLICKED, DEE, "2026-10-03T09:00:00Z", **SALE, url=URL),  # C5
    webhook(CLICKED, EVE, "2026-10-01T09:00:00Z", **SALE, url=URL),  # C6
    webhook(CLICKED, GUS, "2026-09-20T10:00:00Z", **RESTOCK, url=URL),  # C7
    webhook(OPENED, ANN, "2026-10-02T11:00:00Z", **SALE),  # P1
]

WEBSITE = """
CREATE SCHEMA website;
CREATE TABLE website.identifies (
    id text PRIMARY KEY, anonymous_id text, user_id text, email text, "timestamp" timestamptz
);
INSERT INTO website.identifies VALUES
    ('i1', 'anon-cat', NULL, ' CAT@example.com ', '2026-10-02 19:00Z'),
    ('i2', 'anon-other', NULL, 'nobody@example.com', '2026-10-02 19:00Z');
CREATE TABLE website.order_completed (
    id text PRIMARY KEY, anonymous_id text, user_id text, context_traits_email text,
    event text, event_text text, "timestamp" timestamptz NOT NULL, revenue numeric
);
INSERT INTO website.order_completed VALUES
    ('O1', 'anon-ann', 'u_ann', NULL, 'order_completed', 'Order Completed', '2026-10-03 10:00Z', 100),
    ('O2', 'anon-bob', NULL, ' Bob@Example.COM ', 'order_completed', 'Order Completed', '2026-10-02 00:00Z', 50),
    ('O3', 'anon-cat', NULL, NULL, 'order_completed', 'Order Completed', '2026-10-02 20:00Z', 30),
    ('O4', 'dee@example.com', NULL, NULL, 'order_completed', 'Order Completed', '2026-10-04 09:00Z', 20),
    ('O5', 'anon-gus', 'u_gus', NULL, 'order_completed', 'Order Completed', '2026-10-01 10:00Z', 70),
    ('O6', 'anon-zed', 'u_zed', NULL, 'order_completed', 'Order Completed', '2026-10-02 15:00Z', 5),
    ('O7', 'dee@example.com', 'u_ann', NULL, 'order_completed', 'Order Completed', '2026-10-03 12:00Z', 10);
CREATE TABLE website.tracks (
    id text PRIMARY KEY, anonymous_id text, user_id text, event text, event_text text,
    "timestamp" timestamptz NOT NULL
);
INSERT INTO website.tracks VALUES
    ('T1', 'anon-ann', 'u_ann', 'order_completed', 'Order Completed', '2026-10-03 10:00Z'),
    ('T2', 'anon-cat', 'u_cat', 'signed_up', 'Signed Up', '2026-10-02 09:00Z');
CREATE TABLE website.signups (id text, user_id text, "timestamp" timestamptz, plan text);
CREATE TABLE website.no_time (id text, user_id text, revenue numeric);
CREATE TABLE website.no_identity (id text, "timestamp" timestamptz, revenue numeric);
CREATE TABLE website.text_time (id text, user_id text, "timestamp" text);
"""  # noqa: E501

COLUMNS = (
    "email_id,email_subject,touches,people_touched,conversions,people_converted,"
    "conversion_rate,value,median_hours_to_convert\n"
)


@pytest.fixture
def shop(settings: Settings, engine: Engine, tmp_path: Path) -> str:
    """The Drip events, loaded, and the website schema; returns the database URL."""
    run_pipeline(settings, [str(write_ndjson(tmp_path / "drip.ndjson", DRIP))])
    with engine.begin() as conn:
        conn.exec_driver_sql(WEBSITE)
    assert settings.database_url is not None
    return settings.database_url


def attribution(url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["report", "attribution", *args, "--database-url", url])
    return result.exit_code, result.stdout, result.stderr


ORDERS = ("--conversions", "website.order_completed", "--value-column", "revenue")


def test_each_stitching_rule_credits_the_latest_touch_in_the_window(shop: str) -> None:
    code, out, err = attribution(shop, *ORDERS, "--format", "csv")

    assert (code, err) == (0, "")
    assert out == (
        COLUMNS + "7002,Restock,3,3,3,2,0.6667,140.0,24.0\n"
        "7001,Spring sale,4,4,2,2,0.5,70.0,18.0\n"
        ",(unattributed),,,2,,,75.0,\n"
    )


def test_json_is_a_list_of_rows(shop: str) -> None:
    code, out, _ = attribution(shop, *ORDERS, "--format", "json")

    assert code == 0
    assert json.loads(out) == [
        {
            "email_id": "7002",
            "email_subject": "Restock",
            "touches": 3,
            "people_touched": 3,
            "conversions": 3,
            "people_converted": 2,
            "conversion_rate": 0.6667,
            "value": 140.0,
            "median_hours_to_convert": 24.0,
        },
        {
            "email_id": "7001",
            "email_subject": "Spring sale",
            "touches": 4,
            "people_touched": 4,
            "conversions": 2,
            "people_converted": 2,
            "conversion_rate": 0.5,
            "value": 70.0,
            "median_hours_to_convert": 18.0,
        },
        {
            "email_id": None,
            "email_subject": "(unattributed)",
            "touches": None,
            "people_touched": None,
            "conversions": 2,
            "people_converted": None,
            "conversion_rate": None,
            "value": 75.0,
            "median_hours_to_convert": None,
        },
    ]


def test_table_for_a_terminal(shop: str) -> None:
    code, out, _ = attribution(shop, *ORDERS)

    assert code == 0
    # text to the left, numbers to the right, NULL blank
    assert out.splitlines() == [
        "email_id  email_subject   touches  people_touched  conversions  people_converted  "
        "conversion_rate  value  median_hours_to_convert",
        "7002      Restock               3               3            3                 2  "
        "         0.6667  140.0                     24.0",
        "7001      Spring sale           4               4            2                 2  "
        "            0.5   70.0                     18.0",
        "          (unattributed)                                     2                    "
        "                  75.0",
    ]


def test_a_wider_window_reaches_the_older_touch(shop: str) -> None:
    # C7 is 11 days (264 h) before O5: inside 12d, outside 264h - 1 minute
    _, out, _ = attribution(shop, *ORDERS, "--window", "12d", "--format", "csv")
    assert out == (
        COLUMNS + "7002,Restock,3,3,4,3,1.0,210.0,25.0\n"
        "7001,Spring sale,4,4,2,2,0.5,70.0,18.0\n"
        ",(unattributed),,,1,,,5.0,\n"
    )
    _, out, _ = attribution(shop, *ORDERS, "--window", "15839m", "--format", "csv")
    assert out.splitlines()[-1] == ",(unattributed),,,2,,,75.0,"
    _, out, _ = attribution(shop, *ORDERS, "--window", "264h", "--format", "csv")
    assert out.splitlines()[-1] == ",(unattributed),,,1,,,5.0,"


def test_opens_as_touches(shop: str) -> None:
    # P1 (ann opens 7001 on 10-02 11:00) explains O1 (23 h) and O7 (25 h)
    _, out, _ = attribution(shop, *ORDERS, "--touch", "open", "--format", "csv")
    assert out == (
        COLUMNS + "7001,Spring sale,1,1,2,1,1.0,110.0,24.0\n,(unattributed),,,5,,,175.0,\n"
    )


def test_since_and_until_bound_the_conversions(shop: str) -> None:
    # conversions O2, O3, O6; touches that can explain them: 09-25 .. 10-03 (C1-C4, C6)
    _, out, _ = attribution(
        shop, *ORDERS, "--since", "2026-10-02", "--until", "2026-10-03", "--format", "csv"
    )
    assert out == (
        COLUMNS + "7001,Spring sale,3,3,1,1,0.3333,50.0,12.0\n"
        "7002,Restock,2,2,1,1,0.5,30.0,12.0\n"
        ",(unattributed),,,1,,,5.0,\n"
    )


def test_without_a_value_column_value_is_null(shop: str) -> None:
    _, out, _ = attribution(shop, "--conversions", "website.order_completed", "--format", "csv")
    assert out == (
        COLUMNS + "7002,Restock,3,3,3,2,0.6667,,24.0\n"
        "7001,Spring sale,4,4,2,2,0.5,,18.0\n"
        ",(unattributed),,,2,,,,\n"
    )


def test_tracks_with_an_event(shop: str, tmp_path: Path) -> None:
    target = tmp_path / "attribution.json"
    code, out, err = attribution(
        shop,
        *("--conversions", "website.tracks", "--event", "Order Completed"),
        *("--format", "json", "--out", str(target)),
    )
    assert (code, out, err) == (0, "", f"Wrote 3 row(s) to {target}\n")
    rows = json.loads(target.read_text())
    assert [(r["email_id"], r["conversions"], r["median_hours_to_convert"]) for r in rows] == [
        ("7002", 1, 24.0),
        ("7001", 0, None),
        (None, 0, None),
    ]
    assert rows[1]["conversion_rate"] == 0.0
    # the slug in the event column selects the same rows
    _, by_slug, _ = attribution(
        shop, "--conversions", "website.tracks", "--event", "order_completed", "--format", "json"
    )
    assert json.loads(by_slug) == rows


def test_identifies_is_optional(shop: str, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE website.identifies"))
    _, out, _ = attribution(shop, *ORDERS, "--format", "csv")
    # O3 was matched only through identifies (rule 3); a tie in conversions goes by email_id
    assert out == (
        COLUMNS + "7001,Spring sale,4,4,2,2,0.5,70.0,18.0\n"
        "7002,Restock,3,3,2,1,0.3333,110.0,25.0\n"
        ",(unattributed),,,3,,,105.0,\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--conversions", "website.nope"],
            "conversions table website.nope does not exist (or this user cannot read it): "
            "name a table of the same database in Segment's layout, e.g. website.order_completed",
        ),
        (
            ["--conversions", "website.x;drop"],
            "--conversions 'website.x;drop' is not SCHEMA.TABLE of plain identifiers "
            "(letters, digits, _): e.g. website.order_completed",
        ),
        (
            ["--conversions", "order_completed"],
            "--conversions 'order_completed' is not SCHEMA.TABLE of plain identifiers "
            "(letters, digits, _): e.g. website.order_completed",
        ),
        (
            ["--conversions", 'website."tracks"'],
            "--conversions 'website.\"tracks\"' is not SCHEMA.TABLE of plain identifiers "
            "(letters, digits, _): e.g. website.order_completed",
        ),
        (
            ["--conversions", "website.no_time"],
            "conversions table website.no_time has no timestamp column: attribution needs "
            "Segment's warehouse layout (timestamp, and user_id, anonymous_id or "
            "context_traits_email)",
        ),
        (
            ["--conversions", "website.text_time"],
            "conversions table website.text_time: its timestamp column is not a date/time "
            "type, so it cannot be compared with the touches' times",
        ),
        (
            ["--conversions", "website.no_identity"],
            "conversions table website.no_identity has none of user_id, anonymous_id, "
            "context_traits_email: attribution needs at least one to know who converted",
        ),
        (
            ["--conversions", "website.order_completed", "--value-column", "revenue;drop"],
            "--value-column 'revenue;drop' is not a plain identifier (letters, digits, _): "
            "e.g. revenue",
        ),
        (
            ["--conversions", "website.order_completed", "--value-column", "price"],
            "--value-column price: website.order_completed has no such column (it has id, "
            "anonymous_id, user_id, context_traits_email, event, event_text, timestamp, "
            "revenue)",
        ),
        (
            ["--conversions", "website.order_completed", "--value-column", "event_text"],
            "--value-column event_text: website.order_completed.event_text is not numeric, "
            "so it cannot be summed",
        ),
        (
            ["--conversions", "website.signups", "--event", "Signed Up"],
            "--event: website.signups has no event or event_text column to select it by; "
            "leave --event out for a table that holds one event (e.g. order_completed)",
        ),
        (
            ["--conversions", "website.tracks", "--window", "a week"],
            "--window 'a week' is not a duration: use a number of days, hours or minutes "
            "such as 7d, 24h or 90m",
        ),
        (
            ["--conversions", "website.tracks", "--since", "2026-10-05", "--until", "2026-10-01"],
            "--until (2026-10-01T00:00:00+00:00) must be after --since (2026-10-05T00:00:00+00:00)",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_1(shop: str, args: list[str], message: str) -> None:
    assert attribution(shop, *args) == (1, "", f"Error: {message}\n")


def test_unknown_touch_is_a_usage_error(shop: str) -> None:
    code, _, err = attribution(shop, "--conversions", "website.tracks", "--touch", "view")
    assert code == 2
    assert "'view' is not one of" in err


def test_unmigrated_schema_says_to_migrate(shop: str) -> None:
    code, _, err = attribution(shop, "--conversions", "website.tracks", "--schema", "mart")
    assert (code, err) == (
        1,
        "Error: schema 'mart' has no table email_link_clicked: run `drip-loader migrate` first\n",
    )


@pytest.mark.parametrize(("text", "hours"), [("7d", 168), ("24h", 24), (" 90m ", 1.5), ("1d", 24)])
def test_window_forms(text: str, hours: float) -> None:
    assert parse_window(text).total_seconds() == hours * 3600


@pytest.mark.parametrize("text", ["0d", "7", "7 days", "-1h", "1w"])
def test_bad_windows(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_window(text)


def test_help_lists_every_option() -> None:
    result = runner.invoke(app, ["report", "attribution", "--help"])
    assert result.exit_code == 0
    for option in (
        "--conversions",
        "--event",
        "--window",
        "--touch",
        "--value-column",
        "--since",
        "--until",
        "--format",
        "--out",
        "--database-url",
        "--schema",
    ):
        assert option in result.stdout
