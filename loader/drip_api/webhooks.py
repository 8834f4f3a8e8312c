"""Register, list and delete the Drip webhook that feeds ``drip-loader serve``
(``drip-loader drip webhook create|list|delete``), through Drip's REST API.

The most common setup mistake is a webhook without "received email": Drip leaves it out
unless asked (``include_received_email``), and then the warehouse has no Email Delivered
rows and every open rate is wrong.  So ``create`` always asks for it, and ``list`` warns
about every webhook that misses an event the warehouse maps.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ..config import WEBHOOK_TOKEN_ENV, WEBHOOK_TOKEN_PATTERN, DripSettings
from ..domain.registry import BY_DRIP_EVENT, BY_NAME, DEFAULT_ON
from ..errors import ConfigError, DripApiError, DripNotFound
from ..results import Rows
from .client import DripClient, resolve_account

RECEIVED_EMAIL = "subscriber.received_email"
_RECEIVER_PATH = re.compile(r"^/webhooks/drip/([^/]*)$")
_WEBHOOK_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SECRET_LOOKING = re.compile(r"^[A-Za-z0-9._~-]{16,}$")


def mapped_events() -> tuple[str, ...]:
    """The Drip events the warehouse maps out of the box (sorted): those of the collections
    on by default, the seven email events.  ``webhook list`` warns about a webhook that
    misses one of them.
    """
    return tuple(sorted(e for name in DEFAULT_ON for e in BY_NAME[name].drip_events))


def webhook_events() -> tuple[str, ...]:
    """The Drip events ``webhook create`` subscribes to (sorted): every event of the
    collection registry, on or off.  The receiver keeps every event raw and a collection
    turned on later is backfilled from them, so a webhook that sends them all from the
    start loses no history.
    """
    return tuple(sorted(BY_DRIP_EVENT))


def check_receiver_url(url: str, *, allow_http: bool = False) -> str:
    """``url`` if it is a URL ``serve`` answers webhooks at: https, ``/webhooks/drip/<token>``.

    Raises:
        ConfigError: it is not (the message says what to change).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(
            f"{mask_url(url)} is not a URL: give the receiver's public address, e.g. "
            f"https://drip.example.com/webhooks/drip/${WEBHOOK_TOKEN_ENV}"
        )
    if parts.scheme == "http" and not allow_http:
        raise ConfigError(
            f"{mask_url(url)} is not https: Drip would send subscriber data in clear text; "
            "put serve behind TLS, or pass --allow-http for a test setup"
        )
    path = _RECEIVER_PATH.match(parts.path)
    if path is None or not WEBHOOK_TOKEN_PATTERN.match(path.group(1)):
        raise ConfigError(
            f"{mask_url(url)} is not a serve webhook URL: its path must be "
            f"/webhooks/drip/<token> with the token serve uses (${WEBHOOK_TOKEN_ENV}, "
            "16 to 256 letters, digits, . _ ~ -)"
        )
    return url.strip()


def mask_url(url: str) -> str:
    """``url`` with its secrets hidden: the receiver token, long path segments, query values."""
    parts = urlsplit(url)
    segments = parts.path.split("/")
    for i, segment in enumerate(segments):
        after_drip = i > 0 and segments[i - 1] == "drip" and bool(segment)
        if after_drip or _SECRET_LOOKING.match(segment):
            segments[i] = "***"
    query = "&".join(f"{k}=***" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, "/".join(segments), query, ""))


@dataclass(frozen=True)
class Webhook:
    """One webhook of the account, as Drip lists it."""

    id: str
    post_url: str
    events: tuple[str, ...]
    include_received_email: bool
    version: str | None = None
    created_at: str | None = None

    @classmethod
    def from_api(cls, record: Any) -> Webhook:
        if not isinstance(record, dict) or record.get("id") is None:
            raise DripApiError("Drip answered a webhook without an id; check --drip-api-url")
        events = record.get("events")
        version = record.get("version")  # "1" in the docs, a number in the wild
        return cls(
            id=str(record["id"]),
            post_url=str(record.get("post_url") or ""),
            events=tuple(str(e) for e in events) if isinstance(events, list) else (),
            include_received_email=record.get("include_received_email") is True,
            version=None if version is None else str(version),
            created_at=record.get("created_at"),
        )

    def missing(self) -> tuple[str, ...]:
        """The events the warehouse maps that this webhook does not send (received email first)."""
        # No list: Drip sends every event but received email, unless the flag asks for it
        # (contract §4).  With a list, received email needs both the flag and the list entry.
        if self.events:
            sent = set(self.events)
        else:
            sent = set(mapped_events()) - {RECEIVED_EMAIL}
            sent |= {RECEIVED_EMAIL} if self.include_received_email else set()
        if not self.include_received_email:
            sent.discard(RECEIVED_EMAIL)
        gone = [e for e in mapped_events() if e not in sent]
        return tuple(sorted(gone, key=lambda e: (e != RECEIVED_EMAIL, e)))

    def as_dict(self) -> dict[str, Any]:
        """Its facts as plain JSON values, the URL masked."""
        return {
            "id": self.id,
            "post_url": mask_url(self.post_url),
            "events": list(self.events),
            "include_received_email": self.include_received_email,
            "version": self.version,
            "created_at": self.created_at,
            "missing": list(self.missing()),
        }

    def describe(self) -> str:
        received = "on" if self.include_received_email else "off"
        return (
            f"{self.id}  {mask_url(self.post_url)}  received email {received}  "
            f"events: {', '.join(self.events) or '(all but received email)'}"
        )


def _warning(webhook: Webhook) -> str | None:
    missing = webhook.missing()
    if not missing:
        return None
    why = (
        " (without received email the warehouse gets no Email Delivered rows and open rates are wrong)"
        if RECEIVED_EMAIL in missing
        else ""
    )
    return (
        f"Warning: webhook {webhook.id} misses {', '.join(missing)}{why}; "
        f"replace it: drip-loader drip webhook delete {webhook.id}, then drip webhook create"
    )


def _table(webhooks: tuple[Webhook, ...]) -> Rows:
    rows = [tuple(w.as_dict().values()) for w in webhooks]
    return Rows(WEBHOOK_COLUMNS, rows)


WEBHOOK_COLUMNS = (
    "id",
    "post_url",
    "events",
    "include_received_email",
    "version",
    "created_at",
    "missing",
)
"""The columns of :meth:`Webhook.as_dict`."""


@dataclass(frozen=True)
class WebhookCreated:
    """What ``drip webhook create`` did."""

    account_id: str
    webhook: Webhook
    created: bool
    """False: an identical webhook was already registered (nothing changed)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "created": self.created,
            "webhook": self.webhook.as_dict(),
        }

    def rows(self) -> Rows:
        return _table((self.webhook,))

    def lines(self) -> list[str]:
        head = (
            f"Registered webhook {self.webhook.id} in Drip account {self.account_id}:"
            if self.created
            else f"Already registered in Drip account {self.account_id} (nothing changed):"
        )
        return [
            head,
            f"  URL             {mask_url(self.webhook.post_url)}",
            f"  events          {', '.join(self.webhook.events)}",
            f"  received email  {'on' if self.webhook.include_received_email else 'off'}",
        ] + [w for w in [_warning(self.webhook)] if w]


@dataclass(frozen=True)
class WebhookList:
    """The account's webhooks, for ``drip webhook list``."""

    account_id: str
    webhooks: tuple[Webhook, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "webhooks": [w.as_dict() for w in self.webhooks]}

    def rows(self) -> Rows:
        return _table(self.webhooks)

    def lines(self) -> list[str]:
        if not self.webhooks:
            return [
                f"No webhook in Drip account {self.account_id}: register one with "
                "drip-loader drip webhook create --url https://<host>/webhooks/drip/<token>"
            ]
        lines = [f"Webhooks of Drip account {self.account_id}:"]
        lines += ["  " + w.describe() for w in self.webhooks]
        lines += [w for w in map(_warning, self.webhooks) if w]
        return lines


@dataclass(frozen=True)
class WebhookDeleted:
    """What ``drip webhook delete`` did."""

    account_id: str
    webhook_id: str
    existed: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "webhook_id": self.webhook_id,
            "existed": self.existed,
        }

    def rows(self) -> Rows:
        return Rows(("webhook_id", "existed"), [(self.webhook_id, self.existed)])

    def lines(self) -> list[str]:
        if self.existed:
            return [f"Deleted webhook {self.webhook_id} of Drip account {self.account_id}."]
        return [
            f"Webhook {self.webhook_id} is not in Drip account {self.account_id} "
            "(already deleted): nothing to do."
        ]


def _client(drip: DripSettings, sleep: Callable[[float], None]) -> DripClient:
    return DripClient(drip, sleep=sleep)


def _fetch_all(client: DripClient, account_id: str) -> tuple[Webhook, ...]:
    items = client.get(f"{account_id}/webhooks").get("webhooks")
    return tuple(Webhook.from_api(w) for w in items) if isinstance(items, list) else ()


def create_webhook(
    drip: DripSettings,
    *,
    url: str,
    allow_http: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> WebhookCreated:
    """Register ``url`` for every event the warehouse maps, received email included.

    Running it again with the same URL changes nothing (an identical webhook is reported).

    Raises:
        ConfigError: the URL is not one serve answers at (checked before any request).
        DripApiError: Drip refused (e.g. 422 for a URL it does not accept).
    """
    post_url = check_receiver_url(url, allow_http=allow_http)
    with _client(drip, sleep) as client:
        account_id = resolve_account(client, drip.account_id)
        for existing in _fetch_all(client, account_id):
            if existing.post_url == post_url and not existing.missing():
                return WebhookCreated(account_id, existing, created=False)
        body = {
            "webhooks": [
                {
                    "post_url": post_url,
                    "events": list(webhook_events()),
                    "include_received_email": True,
                }
            ]
        }
        items = client.post(f"{account_id}/webhooks", body).get("webhooks")
        if not isinstance(items, list) or not items:
            raise DripApiError("Drip answered the webhook creation without the webhook")
        return WebhookCreated(account_id, Webhook.from_api(items[0]), created=True)


def list_webhooks(
    drip: DripSettings, *, sleep: Callable[[float], None] = time.sleep
) -> WebhookList:
    """Every webhook of the account, each checked against :func:`mapped_events`."""
    with _client(drip, sleep) as client:
        account_id = resolve_account(client, drip.account_id)
        return WebhookList(account_id, _fetch_all(client, account_id))


def delete_webhook(
    drip: DripSettings, *, webhook_id: str, sleep: Callable[[float], None] = time.sleep
) -> WebhookDeleted:
    """Delete one webhook; one that is already gone (404) counts as done."""
    if not _WEBHOOK_ID.match(webhook_id.strip()):
        raise ConfigError(f"invalid webhook id {webhook_id!r}: see drip-loader drip webhook list")
    with _client(drip, sleep) as client:
        account_id = resolve_account(client, drip.account_id)
        try:
            client.request("DELETE", f"{account_id}/webhooks/{webhook_id.strip()}")
        except DripNotFound:
            return WebhookDeleted(account_id, webhook_id.strip(), existed=False)
        return WebhookDeleted(account_id, webhook_id.strip(), existed=True)
