"""The domain contract in code (spec ``drip-events.md`` §2-§4, §6); pure, no I/O.

* which Drip events are email events (:data:`EMAIL_EVENTS`, from :mod:`loader.registry`);
* the event id (:func:`event_id`), a compatibility contract that must never change;
* :func:`parse_record`, which turns one raw webhook body into what the landing table needs,
  or raises :class:`BadRecord` with a reason a person can act on.

The identity rule (§3) and the column mapping (§5) are applied in SQL by the transform, from
the raw JSON, so a mapping fix can be replayed over landed events.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from . import registry


@dataclass(frozen=True)
class EmailEvent:
    """One of the seven Drip email events and its Segment collection."""

    drip_event: str
    slug: str
    """Segment table and ``event`` value, e.g. ``email_opened``."""
    name: str
    """Segment event name (``event_text``), e.g. ``Email Opened``."""
    unsubscribe_scope: str | None = None


EMAIL_EVENTS: dict[str, EmailEvent] = {
    source.drip_event: EmailEvent(
        source.drip_event,
        collection.name,
        collection.event_text,
        dict(source.fixed).get("unsubscribe_scope"),
    )
    for collection in registry.COLLECTIONS
    if collection.email
    for source in collection.sources
}
"""The seven Drip email events (from :mod:`loader.registry`): validated at landing (§6)."""

COLLECTIONS: tuple[str, ...] = registry.DEFAULT_ON
"""The six email collection tables, in the order the spec lists them."""

SEPARATOR = "\x1f"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_PROPERTY_FIELDS = (
    "delivery_id",
    "email_id",
    "email_subject",
    "url",
    "campaign_id",
    "campaign_name",
    "ip_address",
    "user_agent",
)


MAX_DEPTH = 64
"""Deepest JSON nesting accepted: Drip bodies nest about 4 levels; deeper is hostile input."""


class BadRecord(ValueError):
    """A record that cannot be mapped; ``reason`` goes to the rejects table."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LandingRecord(NamedTuple):
    """What the landing table stores for one accepted webhook body (a tuple: built per record)."""

    key: str
    event: str
    occurred_at: datetime
    is_email: bool
    payload: bytes
    """The JSON text to store as jsonb: the original bytes unless they had to be sanitised."""


def occurred_at_micros(occurred_at: datetime) -> int:
    """Integer microseconds since the Unix epoch (UTC) of an aware datetime."""
    return (occurred_at - _EPOCH) // _MICROSECOND


def event_id(
    *,
    account_id: str,
    event: str,
    subscriber: str,
    scope_id: str,
    url: str,
    occurred_at: datetime,
) -> str:
    """The event id of spec §4: ``drip-`` + 40 hex chars of sha256 over the key fields.

    Args:
        account_id: ``data.account_id`` as text.
        event: the Drip event name, e.g. ``subscriber.opened_email``.
        subscriber: ``data.subscriber.id``, or the email when there is no id.
        scope_id: ``delivery_id`` or ``campaign_id`` or ``""``.
        url: ``properties.url`` or ``""``.
        occurred_at: timezone-aware instant; ``Z`` and ``+00:00`` give the same id.
    """
    return _key(account_id, event, subscriber, scope_id, url, occurred_at_micros(occurred_at))


def parse_occurred_at(value: Any) -> datetime:
    """Parse ``occurred_at`` (ISO 8601) to an aware UTC datetime.

    **(decision)** A timestamp without an offset is taken as UTC: Drip always sends UTC,
    and exports that drop the ``Z`` keep UTC values.
    """
    parsed, _ = _parse_occurred_at(value)
    return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)


_MIN_MICROS = occurred_at_micros(datetime.min.replace(tzinfo=UTC))
_MAX_MICROS = occurred_at_micros(datetime.max.replace(tzinfo=UTC))

_COPY_SAFE_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:0[0-9]|1[0-4]):[0-5][0-9])"
)
"""``occurred_at`` texts that Postgres reads as the very instant Python parsed: the common
ISO 8601 shape, at most microseconds (Postgres would round a 7th digit where Python
truncates), an explicit offset (without one Postgres would use the session time zone) that
Postgres accepts (it refuses offsets of 16 hours and more).  Python checked the values."""


def _parse_occurred_at(value: Any) -> tuple[datetime, int]:
    """``occurred_at`` as an aware datetime (in its own offset) and its epoch microseconds."""
    if type(value) is not str:
        if value is None:
            raise BadRecord("occurred_at is missing")
        raise BadRecord(f"occurred_at must be an ISO 8601 string, got {_kind(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRecord(f"occurred_at is not an ISO 8601 timestamp: {value[:64]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    # Subtracting an aware datetime gives the instant's offset from the epoch, whatever the
    # zone; the range check stands in for the overflow of converting it to UTC.
    micros = occurred_at_micros(parsed)
    if not _MIN_MICROS <= micros <= _MAX_MICROS:
        raise BadRecord(f"occurred_at is out of range: {value[:64]!r}")
    return parsed, micros


CopyFields = tuple[str, str, str, bool, bytes, date]
"""``(key, event, occurred_at, is_email, payload, month)`` of an accepted record,
``occurred_at`` as the text it had in the record (see :func:`copy_timestamp`), ``month``
the first day of its UTC month (:func:`utc_month`: the partition the event is stored in)."""

_DAY = 86_400_000_000
"""Microseconds in a day."""
_EPOCH_DAY = date(1970, 1, 1)
_MONTH_OF_DAY: dict[int, date] = {}
"""A small cache: a file's events fall on a few hundred days at most."""


def utc_month(micros: int) -> date:
    """The first day of the UTC month of the instant ``micros`` (microseconds since the epoch).

    Events are stored by month of their own time, in UTC (spec §5, the storage decision):
    an instant written with any offset lands in the same month.
    """
    day = micros // _DAY
    month = _MONTH_OF_DAY.get(day)
    if month is None:
        if len(_MONTH_OF_DAY) >= 4096:
            _MONTH_OF_DAY.clear()
        at = _EPOCH_DAY + timedelta(days=day)
        month = _MONTH_OF_DAY[day] = date(at.year, at.month, 1)
    return month


def parse_record(raw: bytes) -> LandingRecord:
    """Validate one webhook body and compute its landing key.

    Raises:
        BadRecord: the body is not a mappable Drip event (spec §6); ``reason`` says why.
    """
    key, event, occurred_at, is_email, payload, _ = parse_for_copy(raw)
    return LandingRecord(key, event, parse_occurred_at(occurred_at), is_email, payload)


def copy_timestamp(occurred_at: str) -> str:
    """The ``occurred_at`` text of an accepted record as COPY should send it.

    The text itself when Postgres reads it as the same instant (formatting one costs
    more than parsing it), else the UTC instant in ISO 8601.
    """
    if _COPY_SAFE_TIMESTAMP.fullmatch(occurred_at) is None:
        return parse_occurred_at(occurred_at).isoformat()
    return occurred_at


def parse_for_copy(raw: bytes) -> CopyFields:
    """:func:`parse_record` for COPY: the same checks and key, the timestamp as text, and
    the event's UTC month.

    Raises:
        BadRecord: the body is not a mappable Drip event (spec §6); ``reason`` says why.
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as utf:
            raise BadRecord(f"invalid UTF-8 at byte {utf.start}") from None
        raise BadRecord(f"not JSON: {exc}") from None
    if type(body) is not dict:
        raise BadRecord(f"not a JSON object (got {_kind(body)})")
    # Deeper than MAX_DEPTH takes more than MAX_DEPTH '[' or '{'.  (Deleting a byte with
    # replace and comparing lengths is twice as fast as bytes.count.)
    if (
        len(raw) * 2 - len(raw.replace(b"[", b"")) - len(raw.replace(b"{", b"")) > MAX_DEPTH
        and _depth(body) > MAX_DEPTH
    ):
        raise BadRecord(f"JSON is nested deeper than {MAX_DEPTH} levels")
    event = body.get("event")
    if type(event) is not str:
        if event is None:
            raise BadRecord("event is missing")
        raise BadRecord(f"event must be a string, got {_kind(event)}")
    if not event.strip():
        raise BadRecord("event is empty")
    text: Any = body.get("occurred_at")
    _, micros = _parse_occurred_at(text)

    payload = raw
    if 0x5C in raw and raw.find(b"\\u0000") != -1:  # no backslash, no escape: a memchr
        # Postgres jsonb (and text) cannot hold U+0000: store U+FFFD in its place, the
        # same way for every copy of the record so its key stays stable.
        sanitized = _without_nul(body)
        if sanitized != body:
            body = sanitized
            payload = orjson.dumps(body)
            event = body["event"]

    month = utc_month(micros)
    if event in EMAIL_EVENTS:
        return _email_event_key(body, event, micros), event, text, True, payload, month
    return _other_event_key(body, event, micros), event, text, False, payload, month


def _key(account_id: str, event: str, subscriber: str, scope_id: str, url: str, micros: int) -> str:
    """The formula of spec §4 (:func:`event_id`) over the instant's epoch microseconds."""
    key = SEPARATOR.join((account_id, event, subscriber, scope_id, url, str(micros)))
    return "drip-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


def _email_event_key(body: dict[str, Any], event: str, micros: int) -> str:
    data = body.get("data")
    if type(data) is not dict:
        data = _object(data, "data", required=True)
    subscriber = data.get("subscriber")
    if type(subscriber) is not dict:
        subscriber = _object(subscriber, "data.subscriber", required=True)
    properties = data.get("properties")
    if type(properties) is not dict:
        properties = _object(properties, "data.properties", required=False)
    account_id = data.get("account_id")
    subscriber_id = subscriber.get("id")
    email = subscriber.get("email")
    user_id = subscriber.get("user_id")
    # The common case (every field a string or absent) is checked in one pass; anything
    # else goes through the slow path that converts integers or names the bad field.
    if type(account_id) is not str:
        account_id = _text(account_id, "data.account_id") or ""
    if type(subscriber_id) is not str:
        subscriber_id = _text(subscriber_id, "data.subscriber.id")
    if email is not None and type(email) is not str:
        raise BadRecord(f"data.subscriber.email must be a string, got {_kind(email)}")
    if user_id is not None and type(user_id) is not str:
        _text(user_id, "data.subscriber.user_id")
    for value in properties.values():
        if type(value) is not str:
            # Only now look at which fields: the checks run in the documented field order,
            # so a record with several bad fields names the same one every time.
            for name in _PROPERTY_FIELDS:
                value = properties.get(name)
                if value is not None and type(value) is not str:
                    _text(value, f"data.properties.{name}")
            break
    who = subscriber_id or email
    if not who:
        raise BadRecord("email event has no subscriber identity (no data.subscriber.id or email)")
    scope = properties.get("delivery_id")
    if type(scope) is not str:
        scope = _scalar(scope)
    if not scope:
        scope = _scalar(properties.get("campaign_id"))
    url = properties.get("url")
    if type(url) is not str:
        url = _scalar(url)
    return _key(account_id, event, who, scope, url, micros)


def _other_event_key(body: dict[str, Any], event: str, micros: int) -> str:
    """Landing key of a non-email Drip event (never rejected, spec §1).

    **(decision)** Same formula as email events, plus a hash of ``data.properties``: Drip
    timestamps have one-second resolution, and two tags applied to one subscriber in the
    same second are two events.  These keys never reach a Segment table.
    """
    data = body.get("data")
    data = data if type(data) is dict else {"properties": data}
    subscriber = data.get("subscriber")
    subscriber = subscriber if type(subscriber) is dict else {}
    properties = data.get("properties")
    who = _scalar(subscriber.get("id")) or _scalar(subscriber.get("email"))
    digest = hashlib.sha256(orjson.dumps(properties, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return _key(_scalar(data.get("account_id")), event, who, digest, "", micros)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a non-integer number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _object(value: Any, path: str, *, required: bool) -> dict[str, Any]:
    if type(value) is dict:
        return value
    if value is None and not required:
        return {}
    if value is None:
        raise BadRecord(f"{path} is missing")
    raise BadRecord(f"{path} must be an object, got {_kind(value)}")


def _text(value: Any, path: str) -> str | None:
    """A text field: strings as they are, integers as decimal text (ids arrive both ways)."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return None
    if kind is int:
        return str(value)
    raise BadRecord(f"{path} must be a string, got {_kind(value)}")


def _scalar(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return str(value)
    return ""


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion (the input may be hostile)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if type(item) is dict:
            children: Any = item.values()
        elif type(item) is list:
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _without_nul(value: Any) -> Any:
    if type(value) is str:
        return value.replace("\x00", "\ufffd")
    if type(value) is dict:
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if type(value) is list:
        return [_without_nul(v) for v in value]
    return value
