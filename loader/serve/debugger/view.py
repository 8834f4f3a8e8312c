"""What the debugger page shows of recorded requests and of ``_rejects`` rows (pure, no I/O).

A request becomes one row per event it held (a JSON array body holds several), each with
its outcome:

* ``landed``: this request stored the event first (its stored origin is this request's);
* ``duplicate``: the event was already stored (a retry, or the same event from a file);
* ``stored``: stored, but the warehouse could not say by whom (it did not answer);
* ``rejected``: refused with a reason, kept in ``_rejects`` (HTTP 400);
* ``too large``: over ``--max-body-bytes`` (413; its head is in ``_rejects``);
* ``not stored``: answered 429 (the database was away): Drip sends it again;
* ``timed out``: its body did not arrive in time (408);
* ``wrong token``: posted to a webhook URL with another token (404; nothing read);
* ``empty``: an empty JSON array (200: nothing to store).

The Drip event name, the collection it maps to (or ``kept raw`` when that collection is
off), the subscriber's email and the body pretty-printed come from the body itself,
re-validated here with the landing's own rules, masked unless ``show_pii``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from ...domain.events import BadRecord, parse_for_copy
from ...domain.registry import BY_DRIP_EVENT
from ..refusals import drip_event
from .masking import mask_address, mask_json, mask_text
from .recorder import BODY_CAP, Entry

_ARRAY = re.compile(rb"\s*\[")
_STATUS_OUTCOMES = {408: "timed out", 413: "too large", 429: "not stored"}
WRONG_TOKEN = (
    "the token in the URL is not this server's webhook token: nothing was read or stored "
    "(check the URL registered in Drip)"
)


class Item(NamedTuple):
    """One event of a recorded request, validated (before the warehouse is asked about it)."""

    entry: Entry
    element: int | None
    """Its position in an array body; None for a body of one event."""
    raw: bytes | None
    parsed: Any
    key: str | None
    event: str | None
    reason: str | None
    """Why the landing's validation refuses it; None when it passes."""

    @property
    def origin(self) -> str:
        """The origin it was stored with (an array element's carries its index)."""
        origin = self.entry.origin
        return origin if self.element is None else f"{origin}[{self.element}]"


def items(entries: Iterable[Entry]) -> list[Item]:
    """Each event of each request, validated as the landing validated it."""
    result: list[Item] = []
    for entry in entries:
        body = entry.body
        if body is None or entry.status in (404, 408, 413) or len(body) < entry.size:
            event = drip_event(body, entry.reasons[0] if entry.reasons else "")
            result.append(Item(entry, None, body, _loads(body), None, event, None))
            continue
        elements: list[Any] | None = None
        if _ARRAY.match(body):
            parsed = _loads(body)
            elements = parsed if isinstance(parsed, list) else None
        if elements is None:
            result.append(_item(entry, None, body))
        elif not elements:
            result.append(Item(entry, None, body, elements, None, None, None))
        else:
            result.extend(
                _item(entry, index, orjson.dumps(element)) for index, element in enumerate(elements)
            )
    return result


def _item(entry: Entry, index: int | None, raw: bytes) -> Item:
    parsed = _loads(raw)
    try:
        key, event, *_ = parse_for_copy(raw)
    except BadRecord as bad:
        name = parsed.get("event") if isinstance(parsed, dict) else None
        return Item(
            entry, index, raw, parsed, None, name if isinstance(name, str) else None, bad.reason
        )
    return Item(entry, index, raw, parsed, key, event, None)


def _loads(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def rows(
    found: Sequence[Item],
    *,
    stored: Mapping[str, str] | None,
    enabled: frozenset[str],
    show_pii: bool,
) -> list[dict[str, Any]]:
    """The page's rows for ``found``: ``stored`` maps event keys to the origin that stored
    them (None when the warehouse did not answer), ``enabled`` names the collections on."""
    return [_row(item, stored, enabled, show_pii) for item in found]


def _row(
    item: Item, stored: Mapping[str, str] | None, enabled: frozenset[str], show_pii: bool
) -> dict[str, Any]:
    entry = item.entry
    outcome, reason = _outcome(item, stored)
    collection = None
    if item.event is not None and outcome in ("landed", "duplicate", "stored", "not stored"):
        found = BY_DRIP_EVENT.get(item.event)
        collection = found.name if found is not None and found.name in enabled else "kept raw"
    return {
        "seq": entry.seq,
        "index": item.element,
        "time": datetime.fromtimestamp(entry.at, UTC).isoformat(timespec="milliseconds"),
        "status": entry.status,
        "outcome": outcome,
        "reason": reason,
        "event": item.event,
        "collection": collection,
        "email": _email(item.parsed, show_pii),
        "client": entry.client,
        "size": entry.size if item.element is None else len(item.raw or b""),
        "body": shown_body(item.raw, item.parsed, show_pii=show_pii),
        "truncated": item.element is None and item.raw is not None and len(item.raw) < entry.size,
    }


def _outcome(item: Item, stored: Mapping[str, str] | None) -> tuple[str, str | None]:
    entry = item.entry
    first = entry.reasons[0] if entry.reasons else None
    if entry.status == 404:
        return "wrong token", WRONG_TOKEN
    if entry.status in _STATUS_OUTCOMES:
        return _STATUS_OUTCOMES[entry.status], first
    if item.reason is not None:
        return "rejected", item.reason
    if first is not None and first.startswith("refused by Postgres"):
        return "rejected", first
    if item.parsed == []:
        return "empty", "an empty JSON array: nothing to store"
    if item.key is None:
        return "stored", None
    if stored is None:
        return "stored", "the warehouse did not answer: landed or duplicate is not known"
    origin = stored.get(item.key)
    if origin is None:
        return "stored", "no longer in _raw_events"
    return ("landed", None) if origin == item.origin else ("duplicate", f"stored first by {origin}")


def _email(parsed: Any, show_pii: bool) -> str | None:
    if not isinstance(parsed, dict):
        return None
    data = parsed.get("data")
    subscriber = data.get("subscriber") if isinstance(data, dict) else None
    email = subscriber.get("email") if isinstance(subscriber, dict) else None
    if not isinstance(email, str) or not email:
        return None
    return email if show_pii else mask_address(email)


def shown_body(raw: bytes | None, parsed: Any, *, show_pii: bool) -> str | None:
    """``raw`` as the page shows it: JSON pretty-printed, personal data masked unless
    ``show_pii``; text that is not JSON (a reject, a head) as text, masked the same way."""
    if raw is None:
        return None
    if parsed is not None or raw.strip() == b"null":
        value = parsed if show_pii else mask_json(parsed)
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    text = raw[:BODY_CAP].decode("utf-8", "replace")
    return text if show_pii else mask_text(text)


class Reject(NamedTuple):
    """A row of ``_rejects`` as the page needs it (its text cut to a head)."""

    id: int
    rejected_at: datetime
    reason: str
    origin: str
    raw_size: int
    head: str


def reject_rows(rejects: Iterable[Reject], *, show_pii: bool) -> list[dict[str, Any]]:
    """The page's rows for ``_rejects`` rows, newest first as given."""
    shown = []
    for reject in rejects:
        raw = reject.head.encode()
        parsed = _loads(raw)
        shown.append(
            {
                "id": reject.id,
                "time": reject.rejected_at.astimezone(UTC).isoformat(timespec="milliseconds"),
                "reason": reject.reason,
                "origin": reject.origin,
                "size": reject.raw_size,
                "event": drip_event(raw, reject.reason),
                "email": _email(parsed, show_pii),
                "body": shown_body(raw, parsed, show_pii=show_pii),
                "truncated": len(raw) < reject.raw_size,
            }
        )
    return shown
