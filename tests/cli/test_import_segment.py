"""``drip-loader import-segment`` as a user meets it: exact output, one-line errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner, Result

from loader.cli.app import app
from tests.support.segment_schema import create_segment_schema, segment_rows

SWITCH = datetime(2026, 10, 1, tzinfo=UTC)
NOWHERE = "postgresql://u@127.0.0.1:1/x"
"""No server listens there: an option refused before the database is touched says so."""


def invoke(*args: str, url: str) -> Result:
    return CliRunner().invoke(app, ["import-segment", *args, "--database-url", url])


@pytest.fixture
def website(engine: Engine, db_url: str) -> str:
    """Segment's schema ``website``: 3 rows per email table before 2026-10-01 and one after,
    the first of each missing from tracks."""
    rows = segment_rows(per_table=3, seed=11, end=SWITCH, after=1, tracks_missing=1)
    create_segment_schema(engine, "website", rows)
    return db_url


CUTOFFS = "".join(
    f"  {name:<20}  2026-10-01T00:00:00+00:00  (--until)\n"
    for name in (
        "email_delivered",
        "email_opened",
        "email_link_clicked",
        "email_unsubscribed",
        "email_bounced",
        "email_marked_as_spam",
    )
)
NOT_COPIED = """\
Segment columns with no counterpart here, not copied (they stay in the Segment schema), with their non-null values before the cutoff:
  tracks: context_traits_first_name 5, uuid 12
  email_delivered: context_traits_first_name 1, uuid 3, email_type 1
  email_opened: context_traits_first_name 2, uuid 3, score 2, is_test 3
  email_link_clicked: context_traits_first_name 1, uuid 3
  email_unsubscribed: context_traits_first_name 2, uuid 3
  email_bounced: context_traits_first_name 1, uuid 3
  email_marked_as_spam: context_traits_first_name 0, uuid 3
"""


def test_a_dry_run_prints_the_cutoffs_and_what_each_table_would_copy(website: str) -> None:
    result = invoke("--from-schema", "website", "--until", "2026-10-01", "--dry-run", url=website)

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout == (
        'Dry run: nothing was copied. From schema "website" into "drip", a run would copy '
        "every row before these cutoffs:\n"
        + CUTOFFS
        + """\
  table                 in Segment  before cutoff  to copy
  tracks                        19             13       13
  email_delivered                4              3        3
  email_opened                   4              3        3
  email_link_clicked             4              3        3
  email_unsubscribed             4              3        3
  email_bounced                  4              3        3
  email_marked_as_spam           4              3        3
"""
        + NOT_COPIED
    )


def test_a_run_prints_what_it_copied_and_a_rerun_copies_nothing(website: str) -> None:
    result = invoke("--from-schema", "website", "--until", "2026-10-01", url=website)

    assert result.exit_code == 0, result.output
    first, *rest = result.stdout.splitlines(keepends=True)
    assert first.startswith('Copied from schema "website" into "drip" in ')
    assert first.endswith(" rows/s), every row before these cutoffs:\n")
    assert "".join(rest) == (
        CUTOFFS
        + """\
  table                 in Segment  before cutoff  to copy  read  added  tracks made
  tracks                        19             13       13    13     13            0
  email_delivered                4              3        3     3      3            1
  email_opened                   4              3        3     3      3            1
  email_link_clicked             4              3        3     3      3            1
  email_unsubscribed             4              3        3     3      3            1
  email_bounced                  4              3        3     3      3            1
  email_marked_as_spam           4              3        3     3      3            1
Subscribers known only from Segment's history: 2 added, 0 updated, 0 replaced by a snapshot drip-loader received.
"""
        + NOT_COPIED
    )

    again = invoke("--from-schema", "website", "--format", "csv", url=website)
    assert again.exit_code == 0, again.output
    assert again.stdout == (
        "table,in_segment,before_cutoff,to_copy,read,added,tracks_made\n"
        "tracks,19,13,0,0,0,0\n"
        + "".join(
            f"{name},4,3,0,0,0,0\n"
            for name in (
                "email_delivered",
                "email_opened",
                "email_link_clicked",
                "email_unsubscribed",
                "email_bounced",
                "email_marked_as_spam",
            )
        )
    )


def test_json_has_every_fact(website: str) -> None:
    result = invoke(
        "--from-schema", "website", "--until", "2026-10-01", "--format", "json", url=website
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source_schema"] == "website" and report["dry_run"] is False
    assert report["cutoffs"]["email_opened"] == {
        "at": "2026-10-01T00:00:00+00:00",
        "reason": "--until",
    }
    assert report["tables"][2] == {
        "table": "email_opened",
        "in_segment": 4,
        "before_cutoff": 3,
        "to_copy": 3,
        "read": 3,
        "added": 3,
        "tracks_made": 1,
        "not_copied": {"context_traits_first_name": 2, "uuid": 3, "score": 2, "is_test": 3},
    }
    assert report["subscribers"] == {"added": 2, "updated": 0, "replaced": 0}


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("--from-schema", "website", "--until", "soon"),
            "Error: --until 'soon' is not a date or time: use 2026-10-01 or 2026-10-01T12:00:00Z",
        ),
        (
            ("--from-schema", "Web-Site"),
            "Error: invalid schema name 'Web-Site': use lower-case letters, digits and _ (start "
            "with a letter or _, at most 63 characters, not pg_*)",
        ),
        (
            ("--from-schema", "drip"),
            'Error: --from-schema is the warehouse schema "drip" itself: import from the schema '
            "Segment's Drip source writes to, into a schema of drip-loader's",
        ),
    ],
)
def test_a_bad_option_is_one_line_before_the_database_is_touched(
    args: tuple[str, ...], line: str
) -> None:
    result = invoke(*args, url=NOWHERE)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", line + "\n")


def test_without_from_schema_it_says_what_is_missing() -> None:
    result = invoke(url=NOWHERE)
    assert result.exit_code == 2
    assert "Missing option '--from-schema'" in result.stderr


def test_a_row_that_cannot_land_is_one_line_naming_table_row_and_column(
    website: str, engine: Engine
) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE website.email_opened ALTER sent_at TYPE varchar(1024)"))
        row = conn.execute(
            sa.text(
                "UPDATE website.email_opened SET sent_at = 'yesterday' "
                'WHERE id = (SELECT min(id) FROM website.email_opened WHERE "timestamp" < '
                "'2026-10-01') RETURNING id"
            )
        ).scalar_one()
    result = invoke("--from-schema", "website", "--until", "2026-10-01", url=website)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: email_opened row \"{row}\": column sent_at holds 'yesterday' (character "
        "varying(1024)), which is no time drip-loader can store (timestamptz; text must be "
        "ISO 8601): fix or delete that row in website.email_opened (import-segment never "
        "changes it), then run import-segment again; nothing was copied by this run\n"
    )


def test_migrate_stops_at_a_segment_schema_with_one_line(website: str) -> None:
    result = CliRunner().invoke(app, ["migrate", "--schema", "website", "--database-url", website])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        'Error: schema "website" holds tables drip-loader did not make (email_bounced, '
        "email_delivered, email_link_clicked, ...), perhaps Segment's Drip source: use a new "
        "schema (--schema drip) and copy the history with drip-loader import-segment "
        "--from-schema website\n"
    )
