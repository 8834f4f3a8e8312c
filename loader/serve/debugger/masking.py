"""What the debugger page hides of a Drip body: the personal data in it (pure, no I/O).

Masked, wherever they appear in a body:

* every email address (also URL-encoded, e.g. in a click's URL): ``john@acme.com`` becomes
  ``j***@acme.com`` (the domain stays: it tells deliverability problems apart);
* the value of the personal fields of a Drip subscriber or event (:data:`PERSONAL_KEYS`:
  names, postal address, phone and SMS numbers, birthday, IP address, user agent, the
  visitor id that ties a browser to a person): ``***``;
* every value of ``custom_fields`` (accounts keep names, phones, companies there; the
  field names stay);
* ``value`` and ``previous_value`` (the ``subscriber.updated_*`` events: an old email, a
  custom field's old value, ...).

Kept: Drip ids (subscriber, account, email, campaign), ``user_id`` (your own pseudonymous
id: identity problems are what the page is for), tags, lead score, time zone, subjects,
URLs (their email addresses masked) and every timestamp.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

PERSONAL_KEYS = frozenset(
    {
        "first_name",
        "last_name",
        "name",
        "full_name",
        "address1",
        "address2",
        "address",
        "city",
        "state",
        "zip",
        "postal_code",
        "country",
        "phone",
        "phone_number",
        "sms_number",
        "birthday",
        "ip_address",
        "ip",
        "user_agent",
        "visitor_uuid",
        "value",
        "previous_value",
    }
)
"""Fields whose value is masked whole, at any depth of a body."""

# An address is found from its @ (or %40, URL-encoded): the domain is words (any script)
# joined by dots, the local part every character before it back to a space or a character
# that ends an address in text or a URL (so ``anaïs@...`` is masked whole, however long).
_AT = re.compile(r"(@|%40)([\w\-]{1,63}(?:\.[\w\-]{1,63}){1,8})")
_LOCAL_END = frozenset("@\"'<>()[],;:\\/?=&#")
_PERSONAL_TEXT = re.compile(
    r'("(?:' + "|".join(sorted(PERSONAL_KEYS)) + r')"\s*:\s*)'
    r'(?!null\b)("(?:[^"\\]|\\.)*(?:"|$)|[^,}\]\s]+)'
)
_CUSTOM_FIELDS_TEXT = re.compile(r'("custom_fields"\s*:\s*)\{[^{}]*(?:\}|$)')
_MEMBER_TEXT = re.compile(r'("(?:[^"\\]|\\.)*"\s*:\s*)("(?:[^"\\]|\\.)*(?:"|$)|[^,}\]\s]+)')


def mask_address(address: str) -> str:
    """``john@acme.com`` as ``j***@acme.com``; another text as its first character and ``***``."""
    masked = mask_emails(address)
    if masked != address or not address:
        return masked
    return address[0] + MASK


def mask_emails(text: str) -> str:
    """``text`` with every email address in it masked (its first character and domain kept)."""
    if "@" not in text and "%40" not in text:
        return text
    parts: list[str] = []
    done = 0
    for found in _AT.finditer(text):
        start = found.start()
        local = start
        # Back to the end of the previous address at most: each character is looked at once.
        while local > done and text[local - 1] not in _LOCAL_END and not text[local - 1].isspace():
            local -= 1
        if local == start:
            continue  # an @ with nothing before it: not an address
        parts.append(text[done:local])
        parts.append(f"{text[local]}{MASK}{found[1]}{found[2]}")
        done = found.end()
    parts.append(text[done:])
    return "".join(parts)


def mask_json(value: Any) -> Any:
    """A copy of a parsed JSON ``value`` with its personal data masked (see the module)."""
    if isinstance(value, dict):
        return {key: _member(key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_json(item) for item in value]
    if isinstance(value, str):
        return mask_emails(value)
    return value


def _member(key: str, value: Any) -> Any:
    if value is None:
        return None
    if key in PERSONAL_KEYS:
        return MASK
    if key == "custom_fields" and isinstance(value, dict):
        return {name: None if item is None else MASK for name, item in value.items()}
    return mask_json(value)


def mask_text(text: str) -> str:
    """Mask what can be found in a body that is not JSON (a reject, the head of a body over
    the limit): emails, the personal fields' values, the values of ``custom_fields``."""
    text = _CUSTOM_FIELDS_TEXT.sub(
        lambda m: m[1] + _MEMBER_TEXT.sub(lambda v: f'{v[1]}"{MASK}"', m[0][len(m[1]) :]), text
    )
    text = _PERSONAL_TEXT.sub(lambda m: f'{m[1]}"{MASK}"', text)
    return mask_emails(text)
