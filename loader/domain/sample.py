"""Deterministic, realistic Drip webhook bodies for the demo, the tests and the benchmarks.

The same ``(events, seed)`` always gives the same bytes.  The stream has every Drip event of
the collection registry in its weight (:attr:`~loader.domain.registry.Source.sample_weight`:
deliveries > opens > clicks > the rest, like a real account's), each with the properties
it reads, valued from the registry's examples (:attr:`~loader.domain.registry.Property.examples`)
or from the email the event is about; retries (exact repeats and repeats with a changed
subscriber snapshot), timestamps in UTC and with offsets, ids as strings and sometimes as
numbers, and text with quotes, backslashes, tabs, emoji and other scripts.  Nothing here
names a Drip event: a new collection gets plausible values from its registry entry.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, BinaryIO

import orjson

from .registry import COLLECTIONS, SHARED_KEYS, Collection, Source

_KINDS: tuple[tuple[Source, Collection], ...] = tuple(
    (source, c) for c in COLLECTIONS for source in c.sources
)
_WEIGHTS = [source.sample_weight for source, _ in _KINDS]
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


def _example(rng: random.Random, examples: Sequence[Any]) -> Any:
    value = rng.choice(examples)
    return value.replace("{n}", str(rng.randint(1, 40))) if isinstance(value, str) else value


EXAMPLE_EMAIL: dict[str, Any] = {
    "email_id": "88000",
    "email_subject": "Email Course: Day 0",
    "delivery_id": "990001",
    "campaign_id": "4455000",
    "campaign_name": "Campaign 0 — onboarding ✉️",
}
"""The email and campaign of :func:`example_properties` (:data:`~loader.domain.registry.SHARED_KEYS`)."""


def example_properties(source: Source, collection: Collection, *, seed: int = 0) -> dict[str, Any]:
    """``data.properties`` of one event of ``source``, as sample bodies have them (never of
    the wrong shape), about :data:`EXAMPLE_EMAIL`."""
    return _properties(random.Random(seed), source, collection, EXAMPLE_EMAIL, odd=False)


def _properties(
    rng: random.Random,
    source: Source,
    collection: Collection,
    shared: dict[str, Any],
    *,
    odd: bool = True,
) -> dict[str, Any]:
    """``data.properties`` of one event: every property ``source`` reads, valued from the
    registry's examples or from ``shared`` (the email and campaign the event is about); with
    ``odd``, in an opt-in event, now and then a field of the wrong shape (it must land as
    NULL)."""
    fixed = dict(source.fixed)
    props: dict[str, Any] = {}
    for prop in collection.properties:
        if prop.column in fixed or (source.reads is not None and prop.column not in source.reads):
            continue
        if prop.type == "jsonb":
            props.update(_example(rng, prop.examples))
        elif prop.path in SHARED_KEYS:
            props[prop.path] = shared[prop.path]
        else:
            props[prop.path] = _example(rng, prop.examples)
    for extra in collection.context:
        props[extra.key] = _example(rng, extra.examples)
    if odd and props and not collection.email and rng.random() < 0.01:
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
        source, collection = rng.choices(_KINDS, _WEIGHTS)[0]
        sub = rng.choice(subscribers)
        account: Any = accounts[0] if rng.random() < 0.9 else accounts[1]
        email_id, subject, (campaign_id, campaign_name) = rng.choice(emails)
        delivery += 1
        shared = {
            "email_id": email_id,
            "email_subject": subject,
            "delivery_id": str(delivery) if rng.random() < 0.95 else delivery,
            "campaign_id": campaign_id,
            "campaign_name": campaign_name,
        }
        body = {
            "event": source.drip_event,
            "data": {
                "account_id": account,
                "subscriber": sub,
                "properties": _properties(rng, source, collection, shared),
            },
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
