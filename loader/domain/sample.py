"""Deterministic, realistic Drip webhook bodies for the demo, the tests and the benchmarks.

The same ``(events, seed)`` always gives the same bytes.  The stream has all seven email
events in proportions like a real account's (deliveries > opens > clicks > the rest),
the 22 other Drip events with their properties (spec §9), retries (exact repeats and repeats with a changed subscriber
snapshot), timestamps in UTC and with offsets, ids as strings and sometimes as numbers,
and text with quotes, backslashes, tabs, emoji and other scripts.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, BinaryIO

import orjson

_EMAIL_WEIGHTS = (
    ("subscriber.received_email", 40),
    ("subscriber.opened_email", 24),
    ("subscriber.clicked_email", 9),
    ("subscriber.bounced", 2),
    ("subscriber.complained", 0.5),
    ("subscriber.unsubscribed_from_campaign", 1.5),
    ("subscriber.unsubscribed_all", 1),
)
_OTHER_EVENTS = (
    # The 22 other Drip events (spec §9), weighted like a real account's lifecycle: tags,
    # page visits and custom fields change often; deletions and alias changes rarely.
    ("subscriber.applied_tag", 4),
    ("subscriber.visited_page", 3),
    ("subscriber.updated_custom_field", 2.5),
    ("subscriber.removed_tag", 1.5),
    ("subscriber.performed_custom_event", 1.5),
    ("subscriber.updated_lead_score", 1.2),
    ("subscriber.created", 1),
    ("subscriber.subscribed_to_campaign", 1),
    ("subscriber.clicked_trigger_link", 0.5),
    ("subscriber.completed_campaign", 0.4),
    ("subscriber.removed_from_campaign", 0.3),
    ("subscriber.updated_lifetime_value", 0.3),
    ("subscriber.subscribed_to_email_marketing", 0.3),
    ("subscriber.became_lead", 0.2),
    ("subscriber.updated_email_address", 0.1),
    ("subscriber.updated_time_zone", 0.1),
    ("subscriber.marked_as_undeliverable", 0.1),
    ("subscriber.deleted", 0.1),
    ("subscriber.updated_alias", 0.05),
    ("subscriber.marked_as_deliverable", 0.05),
    ("subscriber.reactivated", 0.05),
    ("subscriber.became_non_prospect", 0.05),
)
_OTHER_WEIGHT = 15
_SUBJECTS = (
    "Email Course: Day {n}",
    'Your "weekly" digest #{n}',
    "Ofertas de verano ☀️ — {n}% off",
    "Back\\slash & tab\there {n}",
    "日本語のニュースレター {n}",
    "Zoë's picks 🎉 {n}",
    "Привет! Issue {n}",
)
_NAMES = ("John", "Zoë", "José", "Anaïs", "Łukasz", "李雷", "Ольга", "O'Brien", 'Sam "the man"')
_TAGS = ("Customer", "SEO", "Lead", "VIP 💎", "trial", "churn-risk")
_ZONES = ("America/Los_Angeles", "Europe/Berlin", "Asia/Tokyo", "UTC")
_OFFSETS = (UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-7)))
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def _subscriber(rng: random.Random, n: int) -> dict[str, Any]:
    name = rng.choice(_NAMES)
    user_id: Any
    roll = rng.random()
    if roll < 0.45:
        user_id = f"u_{n}"
    elif roll < 0.55:
        user_id = 100000 + n  # some exports carry numeric ids
    elif roll < 0.6:
        user_id = "  "  # blank: must fall back to the email
    else:
        user_id = None
    sub: dict[str, Any] = {
        "id": "".join(rng.choice(_ALPHABET) for _ in range(20)),
        "email": f"{name.split()[0].lower().replace(chr(39), '')}.{n}@example.com",
        "user_id": user_id,
        "status": "active",
        "custom_fields": {"first_name": name, "note": 'likes "quotes"\tand \\ backslashes'},
        "tags": rng.sample(_TAGS, rng.randint(0, 3)),
        "time_zone": rng.choice(_ZONES),
        "lead_score": rng.choice((None, rng.randint(0, 100))),
        "lifetime_value": rng.randint(0, 5000),
        "created_at": "2025-01-01T00:00:00Z",
    }
    if rng.random() < 0.02:
        sub["id"] = None  # identified by email only
    return sub


def _timestamp(rng: random.Random, at: datetime) -> str:
    roll = rng.random()
    if roll < 0.7:
        return at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if roll < 0.8:
        return at.isoformat(timespec="seconds")  # +00:00
    if roll < 0.9:
        return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return at.astimezone(rng.choice(_OFFSETS)).isoformat(timespec="seconds")


_OTHER_NAMES = [e for e, _ in _OTHER_EVENTS]
_OTHER_WEIGHTS = [w for _, w in _OTHER_EVENTS]
_SOURCES = ("drip", "api", "import", "form")


def _other_properties(
    rng: random.Random, kind: str, sub: dict[str, Any], campaign_id: str, campaign_name: str
) -> dict[str, Any]:
    """``data.properties`` of a non-email Drip event, in the shapes of spec §9 (numbers as
    JSON numbers, now and then a field of the wrong shape: it must land as NULL)."""
    event = kind.removeprefix("subscriber.")
    source = rng.choice(_SOURCES)
    props: dict[str, Any]
    if event in ("applied_tag", "removed_tag"):
        props = {"tag": rng.choice(_TAGS), "source": source}
    elif event == "visited_page":
        props = {"url": f"https://www.example.com/p/{rng.randint(1, 40)}", "source": "drip"}
    elif event in ("updated_custom_field", "updated_alias"):
        props = {
            "identifier": rng.choice(("first_name", "plan", "company")),
            "value": rng.choice(_NAMES),
            "previous_value": rng.choice((None, *_NAMES)),
            "source": source,
        }
    elif event == "performed_custom_event":
        props = {
            "action": rng.choice(("Signed up", "Started trial", "Purchased")),
            "plan": rng.choice(("basic", "pro")),
            "amount": rng.choice((19, 49.5, "99")),
        }
    elif event in ("updated_lead_score", "became_lead"):
        props = {"lead_score": rng.randint(0, 100)}
        if event == "updated_lead_score":
            props["previous_lead_score"] = rng.randint(0, 100)
    elif event in ("subscribed_to_campaign", "removed_from_campaign", "completed_campaign"):
        props = {"campaign_id": campaign_id, "campaign_name": campaign_name}
    elif event == "clicked_trigger_link":
        props = {
            "url": f"https://www.example.com/t/{rng.randint(1, 9)}",
            "trigger_id": str(rng.randint(100, 999)),
            "source": "drip",
            "ip_address": f"198.51.100.{rng.randint(1, 254)}",
        }
    elif event == "updated_lifetime_value":
        props = {"value": rng.randint(0, 5000), "previous_value": sub["lifetime_value"]}
        props["source"] = source
    elif event == "updated_email_address":
        props = {"value": f"new.{sub['email']}", "previous_value": sub["email"], "source": source}
    elif event == "updated_time_zone":
        props = {"value": rng.choice(_ZONES), "previous_value": sub["time_zone"]}
    elif event in ("marked_as_deliverable", "marked_as_undeliverable"):
        props = {"source": source}
    else:
        props = {}
    if props and rng.random() < 0.01:
        props[next(iter(props))] = {"unexpected": ["shape"]}
    return props


SAMPLE_START = datetime(2026, 10, 1, tzinfo=UTC)
"""When the first sample event happens (unless told otherwise)."""
MEAN_GAP = timedelta(seconds=1.5625)
"""The mean time between two sample events at ``spread=1``."""


def generate_events(
    *, events: int, seed: int, start: datetime = SAMPLE_START, spread: float = 1.0
) -> Iterator[bytes]:
    """Yield ``events`` NDJSON lines (without newline), deterministic in ``seed``.

    Events happen in time order from ``start``, :data:`MEAN_GAP` apart on average, times
    ``spread`` (e.g. a year's worth of events: ``spread = year / (events * MEAN_GAP)``).
    """
    rng = random.Random(seed)
    accounts = ("9999999", "1234567")
    subscribers = [_subscriber(rng, n) for n in range(max(50, events // 15))]
    campaigns = [(str(4455000 + i), f"Campaign {i} — onboarding ✉️") for i in range(12)]
    emails = [
        (str(88000 + i), rng.choice(_SUBJECTS).format(n=i), rng.choice(campaigns))
        for i in range(60)
    ]
    names = [e for e, _ in _EMAIL_WEIGHTS] + ["other"]
    weights = [w for _, w in _EMAIL_WEIGHTS] + [_OTHER_WEIGHT]
    at = start
    recent: list[dict[str, Any]] = []
    delivery = 990000
    produced = 0
    while produced < events:
        roll = rng.random()
        if recent and roll < 0.03:
            yield orjson.dumps(rng.choice(recent))  # exact retry
            produced += 1
            continue
        if recent and roll < 0.05:
            again = orjson.loads(orjson.dumps(rng.choice(recent)))
            sub = again.get("data", {}).get("subscriber")
            if isinstance(sub, dict):
                sub["tags"] = [*sub.get("tags", []), "retried"]
                sub["lead_score"] = rng.randint(0, 100)
            yield orjson.dumps(again)  # retry with a changed snapshot: the same event
            produced += 1
            continue
        gap = timedelta(seconds=rng.randint(0, 3), microseconds=rng.choice((0, 0, 0, 250000)))
        at += gap if spread == 1 else gap * spread
        kind = rng.choices(names, weights)[0]
        sub = rng.choice(subscribers)
        account: Any = accounts[0] if rng.random() < 0.9 else accounts[1]
        email_id, subject, (campaign_id, campaign_name) = rng.choice(emails)
        delivery += 1
        delivery_id: Any = str(delivery) if rng.random() < 0.95 else delivery
        properties: dict[str, Any]
        if kind == "other":
            kind = rng.choices(_OTHER_NAMES, _OTHER_WEIGHTS)[0]
            properties = _other_properties(rng, kind, sub, campaign_id, campaign_name)
        elif kind == "subscriber.unsubscribed_from_campaign":
            properties = {"campaign_id": campaign_id, "campaign_name": campaign_name}
        elif kind == "subscriber.unsubscribed_all":
            properties = {}
        else:
            properties = {
                "delivery_id": delivery_id,
                "email_id": email_id,
                "email_subject": subject,
            }
            if kind == "subscriber.clicked_email":
                properties["url"] = (
                    f"https://www.example.com/p/{rng.randint(1, 40)}?utm_source=drip"
                )
                properties["ip_address"] = f"203.0.113.{rng.randint(1, 254)}"
                properties["user_agent"] = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)"
        body = {
            "event": kind,
            "data": {"account_id": account, "subscriber": sub, "properties": properties},
            "occurred_at": _timestamp(rng, at),
        }
        recent.append(body)
        if len(recent) > 200:
            recent.pop(0)
        yield orjson.dumps(body)
        produced += 1


def write_sample(
    out: BinaryIO,
    *,
    events: int,
    seed: int,
    start: datetime = SAMPLE_START,
    spread: float = 1.0,
) -> int:
    """Write ``events`` NDJSON lines to ``out`` (see :func:`generate_events`); return the
    number of bytes written."""
    written = 0
    batch: list[bytes] = []
    for line in generate_events(events=events, seed=seed, start=start, spread=spread):
        batch.append(line)
        if len(batch) >= 10_000:
            written += out.write(b"\n".join(batch) + b"\n")
            batch.clear()
    if batch:
        written += out.write(b"\n".join(batch) + b"\n")
    return written
