"""A small, hand-built Drip account whose every analyst figure is computed by hand.

Two loads.  The first (``BATCH_1``) has two emails: 5001 "Welcome" (renamed "Welcome!"),
delivered to ann, bob and cat, opened three times by ann, bounced by cat; and 5002 "Tips",
clicked by bob and dan but never delivered (the account has no Email Delivered webhook for
it).  Unsubscribes: bob and cat (twice) from campaign 4455667, dan from 7788, ann from
everything.  Two non-email events (a tag for ann, eve's creation).  The second load
(``BATCH_2``) adds events to both emails, a retry, a stale snapshot of ann that arrives late,
and a new subscriber (fay) whose two events come newest first.

Event labels (E-01 ...) are used by the expected figures in ``test_analyst.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ACCOUNT = "9999999"


def at(text: str) -> datetime:
    """An instant in UTC, ``"2026-10-05 09:00"`` style."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def webhook(event: str, subscriber: dict[str, Any], occurred_at: str, **properties: Any) -> bytes:
    """One Drip webhook body, as Drip posts it."""
    body = {
        "event": event,
        "data": {"account_id": ACCOUNT, "subscriber": subscriber, "properties": properties},
        "occurred_at": occurred_at,
    }
    return orjson.dumps(body)


def write_ndjson(path: Path, bodies: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(bodies) + b"\n")
    return path


# Subscriber snapshots, as Drip embeds them in every event.
ANN_V1 = {
    "id": "sub_ann",
    "email": "ann@example.com",
    "user_id": "u_ann",
    "status": "active",
    "tags": ["Customer"],
    "custom_fields": {"first_name": "Ann"},
    "time_zone": "Europe/Berlin",
    "lead_score": 10,
    "lifetime_value": 0,
    "created_at": "2026-01-15T08:30:00Z",
}
ANN_V2 = {**ANN_V1, "tags": ["Customer", "VIP"], "lead_score": 42, "lifetime_value": 1999}
ANN_V3 = {**ANN_V2, "status": "unsubscribed"}
ANN_STALE = {**ANN_V1, "tags": [], "lead_score": 1, "custom_fields": {"first_name": "Annie"}}
BOB_V1 = {
    "id": "sub_bob",
    "email": "bob@example.com",
    "user_id": None,  # identified by email: anonymous_id
    "status": "active",
    "tags": [],
    "custom_fields": {},
    "time_zone": "America/New_York",
    "lead_score": None,
    "lifetime_value": 0,
    "created_at": "2026-03-01 12:00:00",  # no offset: UTC
}
BOB_V2 = {**BOB_V1, "lead_score": "high"}  # not a number: NULL
BOB_V3 = {**BOB_V1, "tags": ["Customer"], "lead_score": 3}
CAT_V1 = {
    "id": "sub_cat",
    "email": "cat@example.com",
    "user_id": " u_cat ",  # trimmed, as in tracks (spec §3)
    "status": "active",
    "tags": [],
    "custom_fields": {"first_name": "Cat"},
    "time_zone": "UTC",
    "lead_score": 0,
    "lifetime_value": 0,
    "created_at": "not a date",  # NULL, and the load goes on
}
CAT_V2 = {
    **CAT_V1,
    "tags": ["Lead"],
    "custom_fields": {"first_name": "Cat", "plan": "pro"},
    "lead_score": 5,
    "lifetime_value": 12.5,
}
EVE = {  # a numeric id (some exports), no time_zone key
    "id": 12345,
    "email": "eve@example.com",
    "user_id": "u_eve",
    "status": "active",
    "tags": ["Lead"],
    "custom_fields": {},
    "lead_score": 7,
    "lifetime_value": 0,
    "created_at": "2026-10-03T23:00:00-01:00",
}
DAN = {"email": "dan@example.com", "user_id": None}  # no subscriber id: no subscribers row
FAY_V1 = {
    "id": "sub_fay",
    "email": "fay@example.com",
    "user_id": "u_fay",
    "status": "active",
    "tags": [],
    "custom_fields": {},
    "time_zone": "UTC",
    "lead_score": 0,
    "lifetime_value": 0,
    "created_at": "2026-10-09T09:00:00Z",
}
FAY_V2 = {**FAY_V1, "lead_score": 20}

DELIVERED = "subscriber.received_email"
OPENED = "subscriber.opened_email"
CLICKED = "subscriber.clicked_email"
WELCOME = {"email_id": "5001", "email_subject": "Welcome"}
TIPS = {"email_id": "5002", "email_subject": "Tips"}

BATCH_1 = [
    webhook(DELIVERED, ANN_V1, "2026-10-05T09:00:00Z", delivery_id="9001", **WELCOME),  # E-01
    webhook(DELIVERED, BOB_V1, "2026-10-05T09:00:05Z", delivery_id="9002", **WELCOME),  # E-02
    webhook(DELIVERED, CAT_V1, "2026-10-05T09:00:10Z", delivery_id="9003", **WELCOME),  # E-03
    webhook(OPENED, ANN_V1, "2026-10-05T10:00:00Z", delivery_id="9001", **WELCOME),  # E-04
    webhook(OPENED, ANN_V1, "2026-10-05T11:00:00Z", delivery_id="9001", **WELCOME),  # E-05
    webhook(  # E-06: ann's third open, after the email was renamed
        OPENED,
        ANN_V1,
        "2026-10-06T08:00:00Z",
        delivery_id="9001",
        email_id="5001",
        email_subject="Welcome!",
    ),
    webhook(OPENED, BOB_V1, "2026-10-05T12:00:00Z", delivery_id="9002", **WELCOME),  # E-07
    webhook(  # E-08
        CLICKED,
        ANN_V1,
        "2026-10-05T10:01:00Z",
        delivery_id="9001",
        **WELCOME,
        url="https://example.com/a",
        ip_address="203.0.113.7",
        user_agent="Mozilla/5.0",
    ),
    webhook(
        "subscriber.bounced", CAT_V1, "2026-10-05T09:00:30Z", delivery_id="9003", **WELCOME
    ),  # E-09
    webhook(  # E-10: a click on an email never delivered (no Email Delivered webhook)
        CLICKED,
        BOB_V1,
        "2026-10-06T14:00:00Z",
        delivery_id="9102",
        **TIPS,
        url="https://example.com/tips",
    ),
    webhook(  # E-11: by a subscriber known only by email
        CLICKED,
        DAN,
        "2026-10-06T15:00:00Z",
        delivery_id="9104",
        **TIPS,
        url="https://example.com/tips",
    ),
    webhook(OPENED, BOB_V1, "2026-10-06T13:59:00Z", **TIPS),  # E-12: no delivery_id
    webhook(  # E-13: no subject
        "subscriber.complained", CAT_V1, "2026-10-06T09:00:00Z", delivery_id="9003", email_id="5001"
    ),
    webhook(  # E-14: 2026-10-06 22:30 UTC, the 7th where it was sent
        "subscriber.unsubscribed_from_campaign",
        BOB_V2,
        "2026-10-07T01:30:00+03:00",
        campaign_id="4455667",
        campaign_name="Onboarding",
    ),
    webhook(  # E-15
        "subscriber.unsubscribed_from_campaign",
        CAT_V1,
        "2026-10-07T09:00:00Z",
        campaign_id="4455667",
        campaign_name="Onboarding course",
    ),
    webhook(  # E-16: cat again, one person
        "subscriber.unsubscribed_from_campaign",
        CAT_V2,
        "2026-10-07T10:00:00Z",
        campaign_id="4455667",
        campaign_name="Onboarding course",
    ),
    webhook("subscriber.unsubscribed_all", ANN_V3, "2026-10-08T11:00:00+02:00"),  # E-17
    webhook("subscriber.applied_tag", ANN_V2, "2026-10-07T12:00:00Z", tag="VIP"),  # E-18
    webhook("subscriber.created", EVE, "2026-10-04T00:00:00Z"),  # E-19
    webhook(  # E-20
        "subscriber.unsubscribed_from_campaign",
        DAN,
        "2026-10-07T15:00:00Z",
        campaign_id="7788",
        campaign_name="Newsletter",
    ),
]

BATCH_2 = [
    webhook(OPENED, CAT_V1, "2026-10-07T08:00:00Z", delivery_id="9103", **TIPS),  # E-21
    webhook(DELIVERED, ANN_V1, "2026-10-06T13:00:00Z", delivery_id="9101", **TIPS),  # E-22
    webhook(  # E-23: a stale snapshot of ann, loaded late
        "subscriber.updated_custom_field", ANN_STALE, "2026-10-04T07:00:00Z", field="first_name"
    ),
    webhook(  # E-24
        CLICKED,
        BOB_V3,
        "2026-10-07T20:00:00Z",
        delivery_id="9002",
        email_id="5001",
        email_subject="Welcome!",
        url="https://example.com/b",
    ),
    webhook(  # E-05 again: a retry with a changed snapshot is the same event
        OPENED,
        {**ANN_V1, "tags": ["retried"]},
        "2026-10-05T11:00:00Z",
        delivery_id="9001",
        **WELCOME,
    ),
    webhook("subscriber.updated_lead_score", FAY_V2, "2026-10-09T10:00:00Z", score=20),  # E-25
    webhook("subscriber.created", FAY_V1, "2026-10-09T09:00:00Z"),  # E-26
]
