"""A Segment-made schema, laid out as Segment's Postgres warehouse writes a Drip source:
``id varchar(1024) primary key``, then ``anonymous_id``, ``user_id``, ``event``,
``event_text``, the five times (timestamptz), ``context_*`` columns and one column per
property, typed by its values (here: ``email_id`` bigint, ``score`` numeric, ``is_test``
boolean, the rest varchar), plus Segment's legacy ``uuid`` (bigint).

:func:`segment_rows` makes deterministic rows; :func:`create_segment_schema` writes them.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

EMAIL_TABLES = (
    "email_delivered",
    "email_opened",
    "email_link_clicked",
    "email_unsubscribed",
    "email_bounced",
    "email_marked_as_spam",
)
EVENT_TEXT = {
    "email_delivered": "Email Delivered",
    "email_opened": "Email Opened",
    "email_link_clicked": "Email Link Clicked",
    "email_unsubscribed": "Email Unsubscribed",
    "email_bounced": "Email Bounced",
    "email_marked_as_spam": "Email Marked as Spam",
}
V = "varchar(1024)"
COMMON: tuple[tuple[str, str], ...] = (
    ("id", f"{V} PRIMARY KEY"),
    ("anonymous_id", V),
    ("user_id", V),
    ("event", V),
    ("event_text", V),
    ("received_at", "timestamptz"),
    ("sent_at", "timestamptz"),
    ("timestamp", "timestamptz"),
    ("original_timestamp", "timestamptz"),
    ("uuid_ts", "timestamptz"),
    ("context_library_name", V),
    ("context_library_version", V),
    ("context_integration_name", V),
    ("context_traits_email", V),
    ("context_traits_first_name", V),
    ("uuid", "bigint"),
)
_EMAIL = (("email_id", "bigint"), ("email_subject", V), ("delivery_id", V))
PROPERTIES: dict[str, tuple[tuple[str, str], ...]] = {
    "email_delivered": (*_EMAIL, ("email_type", V)),
    "email_opened": (*_EMAIL, ("score", "numeric"), ("is_test", "boolean")),
    "email_link_clicked": (*_EMAIL, ("link_url", V), ("context_ip", V)),
    "email_unsubscribed": (("campaign_id", V), ("campaign_name", V)),
    "email_bounced": _EMAIL,
    "email_marked_as_spam": _EMAIL,
    "tracks": (),
}
TRACKS_COLUMNS = tuple(name for name, _ in COMMON)

EMAILS = ("Jane@Example.org", "jane@example.org ", "ann@acme.com", "BOB@acme.com", None)
START = datetime(2024, 1, 1, tzinfo=UTC)


def columns(table: str) -> tuple[str, ...]:
    return (*TRACKS_COLUMNS, *(name for name, _ in PROPERTIES[table]))


def create_segment_schema(
    engine: Engine, schema: str, rows: dict[str, list[dict[str, Any]]]
) -> None:
    """Create ``schema`` with the seven tables and insert ``rows`` (table -> rows)."""
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        for table in ("tracks", *EMAIL_TABLES):
            defs = ", ".join(f'"{n}" {t}' for n, t in (*COMMON, *PROPERTIES[table]))
            conn.execute(sa.text(f'CREATE TABLE "{schema}"."{table}" ({defs})'))
            names = columns(table)
            quoted = ", ".join(f'"{n}"' for n in names)
            binds = ", ".join(f":{n}" for n in names)
            if rows.get(table):
                conn.execute(
                    sa.text(f'INSERT INTO "{schema}"."{table}" ({quoted}) VALUES ({binds})'),
                    [{n: r.get(n) for n in names} for r in rows[table]],
                )


def segment_rows(
    *, per_table: int, seed: int, end: datetime, after: int = 3, tracks_missing: int = 2
) -> dict[str, list[dict[str, Any]]]:
    """Rows for every table: ``per_table`` per email table spread from 2024 to ``end``, then
    ``after`` more in the week after ``end`` (past any cutoff near it); the tracks row of
    each, but ``tracks_missing`` of them per table left out (Segment's tracks lacking it),
    plus tracks rows of another event (never copied) and a tracks-only email event."""
    rng = random.Random(seed)
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in ("tracks", *EMAIL_TABLES)}
    span = (end - START).total_seconds()
    for table in EMAIL_TABLES:
        for n in range(per_table + after):
            if n < per_table:
                at = START + timedelta(seconds=rng.uniform(0, span))
            else:
                at = end + timedelta(seconds=rng.uniform(0, 7 * 86400))
            at = at.replace(microsecond=rng.randrange(0, 1_000_000))
            row = _row(rng, table, n, at)
            rows[table].append(row)
            if n >= tracks_missing:
                # Segment always names the event in tracks (its table's rows may lack it)
                rows["tracks"].append({**{c: row.get(c) for c in TRACKS_COLUMNS}, "event": table})
    for n in range(5):
        at = START + timedelta(days=30 * n + 1)
        rows["tracks"].append(
            {
                "id": f"ajs-other-{n}",
                "event": "order_completed",
                "event_text": "Order Completed",
                "timestamp": at,
                "received_at": at,
                "original_timestamp": at,
                "sent_at": at,
                "uuid_ts": at,
            }
        )
    at = START + timedelta(days=3)
    rows["tracks"].append(
        {
            "id": "ajs-tracks-only",
            "anonymous_id": "solo@example.com",
            "event": "email_opened",
            "event_text": "Email Opened",
            "timestamp": at,
            "received_at": at + timedelta(seconds=2),
            "original_timestamp": at,
            "sent_at": None,
            "uuid_ts": at + timedelta(minutes=5),
        }
    )
    return rows


def _row(rng: random.Random, table: str, n: int, at: datetime) -> dict[str, Any]:
    email = EMAILS[n % len(EMAILS)]
    user = f"u_{n % 7}" if n % 3 == 0 else None
    received = at + timedelta(seconds=rng.randint(1, 90))
    row: dict[str, Any] = {
        "id": f"{rng.getrandbits(128):032x}-{table[6:9]}{n}",
        "anonymous_id": None if user else email,
        "user_id": user,
        "event": table if n % 11 else None,  # a NULL now and then
        "event_text": EVENT_TEXT[table] if n % 13 else None,
        "received_at": received,
        "sent_at": received if n % 4 else None,
        "timestamp": at,
        "original_timestamp": at if n % 5 else None,
        "uuid_ts": received + timedelta(minutes=rng.randint(5, 120)),
        "context_library_name": "drip" if n % 2 else None,
        "context_library_version": "1.0",
        "context_integration_name": "drip",
        "context_traits_email": email,
        "context_traits_first_name": rng.choice(("Jane", "Ann", None)),
        "uuid": rng.getrandbits(60),
    }
    if table == "email_unsubscribed":
        row["campaign_id"] = str(4455000 + n % 4) if n % 6 else None
        row["campaign_name"] = f"Campaign {n % 4}"
        return row
    row["email_id"] = 88000 + n % 9 if n % 8 else None
    row["email_subject"] = f"Subject {n % 9}" if n % 10 else None
    row["delivery_id"] = str(990000 + n)
    if table == "email_delivered":
        row["email_type"] = "broadcast" if n % 2 else None
    if table == "email_opened":
        row["score"] = Decimal(n) / 4 if n % 3 else None
        row["is_test"] = n % 2 == 0
    if table == "email_link_clicked":
        row["link_url"] = f"https://www.example.com/p/{n}?utm_source=drip"
        row["context_ip"] = f"203.0.113.{n % 250}"
    return row


_GENERATE = """
INSERT INTO "{schema}"."{table}"
    (id, anonymous_id, user_id, event, event_text, received_at, sent_at, "timestamp",
     original_timestamp, uuid_ts, context_library_name, context_traits_email, uuid{props})
SELECT md5('{table}' || g), CASE WHEN g % 3 <> 0 THEN 'p' || (g % :people) || '@example.com' END,
       CASE WHEN g % 3 = 0 THEN 'u_' || (g % :people) END, '{table}', '{text}',
       t + interval '4 seconds', t + interval '4 seconds', t, t, t + interval '1 hour', 'drip',
       'P' || (g % :people) || '@Example.com', g{values}
FROM generate_series(1, :rows) AS g,
     LATERAL (SELECT CAST(:start AS timestamptz)
                     + (CAST(:end AS timestamptz) - CAST(:start AS timestamptz)) * ((g * 7919) % :rows)
                       / :rows AS t) AS at
"""
_GENERATED_PROPS = {
    "email_unsubscribed": (", campaign_id, campaign_name", ", CAST(4455000 + g % 12 AS text), 'C'"),
    "email_link_clicked": (
        ", email_id, email_subject, delivery_id, link_url",
        ", 88000 + g % 60, 'Subject ' || (g % 60), CAST(990000 + g AS text), 'https://x.test/' || g",
    ),
}
_DEFAULT_PROPS = (
    ", email_id, email_subject, delivery_id",
    ", 88000 + g % 60, 'Subject ' || (g % 60), CAST(990000 + g AS text)",
)


def generate_segment_schema(
    engine: Engine, schema: str, *, per_table: int, start: datetime, end: datetime
) -> int:
    """A Segment-made schema of ``per_table`` rows in each email table, spread over
    ``[start, end)`` out of time order (as a warehouse fills up), and their tracks rows, made
    in SQL (fast enough for hundreds of thousands); returns the rows written in all."""
    create_segment_schema(engine, schema, {})
    with engine.begin() as conn:
        for table in EMAIL_TABLES:
            props, values = _GENERATED_PROPS.get(table, _DEFAULT_PROPS)
            sql = _GENERATE.format(
                schema=schema, table=table, text=EVENT_TEXT[table], props=props, values=values
            )
            conn.execute(
                sa.text(sql),
                {"rows": per_table, "people": 5000, "start": start, "end": end},
            )
            shared = ", ".join(f'"{c}"' for c in TRACKS_COLUMNS)
            conn.execute(
                sa.text(
                    f'INSERT INTO "{schema}".tracks ({shared}) '
                    f'SELECT {shared} FROM "{schema}"."{table}"'
                )
            )
        conn.execute(sa.text(f'ANALYZE "{schema}".tracks'))
    return 2 * per_table * len(EMAIL_TABLES)
