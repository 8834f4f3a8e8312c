"""Deterministic, realistic Drip webhook bodies for the demo, the tests and the benchmarks.

The same ``(events, seed)`` always gives the same bytes.  The stream has all seven email
events in proportions like a real account's (deliveries > opens > clicks > the rest),
non-email Drip events, retries (exact repeats and repeats with a changed subscriber
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
    "subscriber.created",
    "subscriber.applied_tag",
    "subscriber.removed_tag",
    "subscriber.updated_lead_score",
    "subscriber.updated_custom_field",
    "subscriber.subscribed_to_campaign",
    "subscriber.completed_campaign",
    "subscriber.visited_page",
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


def generate_events(*, events: int, seed: int) -> Iterator[bytes]:
    """Yield ``events`` NDJSON lines (without newline), deterministic in ``seed``."""
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
    at = datetime(2026, 10, 1, tzinfo=UTC)
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
        at += timedelta(seconds=rng.randint(0, 3), microseconds=rng.choice((0, 0, 0, 250000)))
        kind = rng.choices(names, weights)[0]
        sub = rng.choice(subscribers)
        account: Any = accounts[0] if rng.random() < 0.9 else accounts[1]
        email_id, subject, (campaign_id, campaign_name) = rng.choice(emails)
        delivery += 1
        delivery_id: Any = str(delivery) if rng.random() < 0.95 else delivery
        properties: dict[str, Any]
        if kind == "other":
            kind = rng.choice(_OTHER_EVENTS)
            properties = {"tag": rng.choice(_TAGS), "source": "drip"}
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


def write_sample(out: BinaryIO, *, events: int, seed: int) -> int:
    """Write ``events`` NDJSON lines to ``out``; return the number of bytes written."""
    written = 0
    batch: list[bytes] = []
    for line in generate_events(events=events, seed=seed):
        batch.append(line)
        if len(batch) >= 10_000:
            written += out.write(b"\n".join(batch) + b"\n")
            batch.clear()
    if batch:
        written += out.write(b"\n".join(batch) + b"\n")
    return written
