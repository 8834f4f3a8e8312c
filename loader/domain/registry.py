"""The collection registry: the one place that says what a collection is (spec §2, §5, §9).

A collection is a warehouse table of one kind of Drip event, laid out like Segment's
(the common columns of spec §5, plus its property columns), with a row per event in
``tracks``.  Everything per collection is derived from :data:`COLLECTIONS`: the
SQLAlchemy metadata (:mod:`loader.warehouse.tables`), the mapping statement, the backfill,
rebuild's table list and the outbox claim (:mod:`loader.warehouse.mapping`), ``status``, the
sample bodies (:mod:`loader.domain.sample`: each property's examples, each Drip event's
weight), the dbt sources and the ``collections`` commands.  Adding a collection is an entry
here and an alembic revision that creates its table and its ``_collections`` row.

The six email collections of Segment's Drip source are on by default; the other 22 Drip
events are opt-in collections (spec §9), named mechanically from the Drip event.  Whether
each is on is stored in the warehouse (``_collections``), not here.

Pure data, no I/O.  Names are validated on import: they end up in SQL as identifiers
(quoted anyway) and as literals.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NewType

from ..errors import ConfigError

PropertyType = Literal["text", "jsonb"]
ContextColumn = Literal["context_ip", "context_user_agent"]


@dataclass(frozen=True)
class Property:
    """One property column of a collection table."""

    column: str
    description: str
    key: str | None = None
    """Key under ``data.properties`` it is read from (default: the column name).  Ignored
    for a column whose value each Drip event fixes (:attr:`Source.fixed`)."""
    type: PropertyType = "text"
    """``text``: the value as text (numbers as their decimal text; an object or array is
    NULL, the raw JSON is kept).  ``jsonb``: the whole ``data.properties`` object."""
    examples: tuple[Any, ...] = ()
    """Plausible values of its key, for sample bodies (``{n}`` in a text becomes a number);
    for a ``jsonb`` column, objects whose keys join the properties.  None for the keys that
    name the email or campaign an event is about (:data:`SHARED_KEYS`): a sample takes
    those from the email it sends, so that an email's id and subject stay together."""

    @property
    def path(self) -> str:
        return self.key or self.column


@dataclass(frozen=True)
class Source:
    """A Drip event that lands in a collection."""

    drip_event: str
    fixed: tuple[tuple[str, str], ...] = ()
    """``(column, value)``: property columns with a constant value for this Drip event."""
    reads: tuple[str, ...] | None = None
    """The property columns read from this event's properties (None: all of them)."""
    sample_weight: float = 1.0
    """How often this Drip event comes up in sample bodies, against the others' weights
    (a real account's proportions: deliveries, then opens, then clicks, ...)."""


@dataclass(frozen=True)
class Context:
    """A context column (spec §5) some collections fill from a property."""

    column: ContextColumn
    key: str
    examples: tuple[Any, ...] = ()
    """Plausible values of its key, for sample bodies."""


@dataclass(frozen=True)
class Collection:
    """One collection table and the Drip event(s) mapped into it."""

    name: str
    """Table name and ``event`` value, e.g. ``email_opened``."""
    event_text: str
    """Segment event name, e.g. ``Email Opened``."""
    sources: tuple[Source, ...]
    properties: tuple[Property, ...]
    description: str
    context: tuple[Context, ...] = ()
    email: bool = False
    """One of Segment's six email collections: on by default, and its events are validated
    at landing (spec §6); the others are opt-in and never rejected (spec §1)."""

    @property
    def drip_events(self) -> tuple[str, ...]:
        return tuple(s.drip_event for s in self.sources)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(p.column for p in self.properties)

    @property
    def on_by_default(self) -> bool:
        return self.email


SHARED_KEYS = ("email_id", "email_subject", "delivery_id", "campaign_id", "campaign_name")
"""Property keys naming the email or campaign an event is about: a sample body takes them
from the email it sends (see :attr:`Property.examples`)."""

_EMAIL_ID = Property("email_id", "Drip id of the email.")
_EMAIL_SUBJECT = Property("email_subject", "Subject line of the email.")
_DELIVERY_ID = Property("delivery_id", "Drip id of the delivery of the email to this subscriber.")
_EMAIL = (_EMAIL_ID, _EMAIL_SUBJECT, _DELIVERY_ID)
_IP = Context("context_ip", "ip_address", ("203.0.113.{n}", "198.51.100.{n}", "2001:db8::{n}"))
_CLICK_CONTEXT = (
    _IP,
    Context(
        "context_user_agent",
        "user_agent",
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
        ),
    ),
)


def _email(
    drip_event: str,
    name: str,
    event_text: str,
    description: str,
    *extra: Property,
    weight: float,
) -> Collection:
    context = _CLICK_CONTEXT if name == "email_link_clicked" else ()
    return Collection(
        name,
        event_text,
        (Source(drip_event, sample_weight=weight),),
        (*_EMAIL, *extra),
        description,
        context,
        email=True,
    )


def opt_in_name(drip_event: str) -> str:
    """Table name of spec §9's naming rule: ``subscriber.applied_tag`` → ``subscriber_applied_tag``."""
    return drip_event.replace(".", "_")


def opt_in_event_text(drip_event: str) -> str:
    """``event_text`` of spec §9: the words, capitalised (``Subscriber Applied Tag``)."""
    return " ".join(word.capitalize() for word in opt_in_name(drip_event).split("_"))


def _opt_in(
    drip_event: str,
    description: str,
    *properties: Property,
    context: tuple[Context, ...] = (),
    weight: float,
) -> Collection:
    return Collection(
        opt_in_name(drip_event),
        opt_in_event_text(drip_event),
        (Source(drip_event, sample_weight=weight),),
        properties,
        description,
        context,
    )


_SOURCE = Property(
    "source",
    "What made the change, as Drip reports it (e.g. drip, api, import).",
    examples=("drip", "api", "import", "form"),
)
_CAMPAIGN = (
    Property("campaign_id", "Drip id of the campaign (email series)."),
    Property("campaign_name", "Name of the campaign."),
)
_NAMES = ("John", "Zoë", "José", "Anaïs", "Łukasz", "李雷", "Ольга", "O'Brien", 'Sam "the man"')
_VALUE = Property("value", "The new value.", examples=_NAMES)
_PREVIOUS = Property("previous_value", "The value before the change.", examples=_NAMES)
_IDENTIFIER = Property(
    "identifier",
    "Which field changed (the custom field or alias name).",
    examples=("first_name", "plan", "company"),
)
_TAG = Property("tag", "The tag.", examples=("Customer", "SEO", "Lead", "VIP 💎", "trial"))
_TIME_ZONES = ("America/Los_Angeles", "Europe/Berlin", "Asia/Tokyo", "UTC")
_MONEY = (0, 19, 49.5, "99.90", 1200)
_LEAD_SCORES = (0, 12, 35, 61.5, 80, 100)

COLLECTIONS: tuple[Collection, ...] = (
    _email(
        "subscriber.received_email",
        "email_delivered",
        "Email Delivered",
        "One row per email Drip delivered to a subscriber (webhook is opt-in in Drip).",
        weight=40,
    ),
    _email(
        "subscriber.opened_email",
        "email_opened",
        "Email Opened",
        "One row per open of an email.",
        weight=24,
    ),
    _email(
        "subscriber.clicked_email",
        "email_link_clicked",
        "Email Link Clicked",
        "One row per click on a link in an email; context_ip and context_user_agent are the clicker's.",
        Property(
            "link_url",
            "The URL clicked.",
            key="url",
            examples=(
                "https://www.example.com/p/{n}?utm_source=drip",
                "https://shop.example.com/sale?utm_campaign=spring&n={n}",
            ),
        ),
        weight=9,
    ),
    Collection(
        "email_unsubscribed",
        "Email Unsubscribed",
        (
            Source(
                "subscriber.unsubscribed_from_campaign",
                fixed=(("unsubscribe_scope", "campaign"),),
                sample_weight=1.5,
            ),
            Source(
                "subscriber.unsubscribed_all",
                fixed=(("unsubscribe_scope", "all"),),
                reads=(),
                sample_weight=1,
            ),
        ),
        (
            Property("campaign_id", "Drip id of the campaign unsubscribed from (scope campaign)."),
            Property("campaign_name", "Name of the campaign unsubscribed from (scope campaign)."),
            Property("unsubscribe_scope", "campaign: from one campaign; all: from every email."),
        ),
        "One row per unsubscribe, from one campaign or from all email.",
        email=True,
    ),
    _email(
        "subscriber.bounced",
        "email_bounced",
        "Email Bounced",
        "One row per email that bounced.",
        weight=2,
    ),
    _email(
        "subscriber.complained",
        "email_marked_as_spam",
        "Email Marked as Spam",
        "One row per email the subscriber marked as spam.",
        weight=0.5,
    ),
    # The other 22 Drip events, weighted like a real account's lifecycle: tags, page visits
    # and custom fields change often; deletions and alias changes rarely.
    _opt_in("subscriber.created", "One row per subscriber created in Drip.", weight=1),
    _opt_in("subscriber.deleted", "One row per subscriber deleted from Drip.", weight=0.1),
    _opt_in(
        "subscriber.subscribed_to_email_marketing",
        "One row per subscriber who opted in to email marketing.",
        weight=0.3,
    ),
    _opt_in("subscriber.reactivated", "One row per subscriber reactivated.", weight=0.05),
    _opt_in(
        "subscriber.became_non_prospect",
        "One row per subscriber marked as non-prospect.",
        weight=0.05,
    ),
    _opt_in(
        "subscriber.marked_as_deliverable",
        "One row per subscriber marked as deliverable.",
        _SOURCE,
        weight=0.05,
    ),
    _opt_in(
        "subscriber.marked_as_undeliverable",
        "One row per subscriber marked as undeliverable.",
        _SOURCE,
        weight=0.1,
    ),
    _opt_in(
        "subscriber.subscribed_to_campaign",
        "One row per subscription of a subscriber to a campaign.",
        *_CAMPAIGN,
        weight=1,
    ),
    _opt_in(
        "subscriber.removed_from_campaign",
        "One row per removal of a subscriber from a campaign.",
        *_CAMPAIGN,
        weight=0.3,
    ),
    _opt_in(
        "subscriber.completed_campaign",
        "One row per subscriber who reached the end of a campaign.",
        *_CAMPAIGN,
        weight=0.4,
    ),
    _opt_in("subscriber.applied_tag", "One row per tag applied to a subscriber.", _TAG, weight=4),
    _opt_in(
        "subscriber.removed_tag", "One row per tag removed from a subscriber.", _TAG, weight=1.5
    ),
    _opt_in(
        "subscriber.updated_custom_field",
        "One row per change of a subscriber's custom field.",
        _IDENTIFIER,
        _VALUE,
        _PREVIOUS,
        _SOURCE,
        weight=2.5,
    ),
    _opt_in(
        "subscriber.updated_alias",
        "One row per change of a subscriber's alias.",
        _IDENTIFIER,
        _VALUE,
        _PREVIOUS,
        _SOURCE,
        weight=0.05,
    ),
    _opt_in(
        "subscriber.updated_email_address",
        "One row per change of a subscriber's email address.",
        Property(
            "value",
            "The new email address.",
            examples=("jane.doe@example.com", "zoe+news@example.org", "jose.{n}@example.net"),
        ),
        Property(
            "previous_value",
            "The email address before the change.",
            examples=("jane@example.com", "zoe.{n}@example.com"),
        ),
        _SOURCE,
        weight=0.1,
    ),
    _opt_in(
        "subscriber.updated_lifetime_value",
        "One row per change of a subscriber's lifetime value.",
        Property("value", "The new lifetime value (decimal text).", examples=_MONEY),
        Property(
            "previous_value",
            "The lifetime value before the change (decimal text).",
            examples=_MONEY,
        ),
        _SOURCE,
        weight=0.3,
    ),
    _opt_in(
        "subscriber.updated_time_zone",
        "One row per change of a subscriber's time zone.",
        Property("value", "The new time zone (IANA name).", examples=_TIME_ZONES),
        Property("previous_value", "The time zone before the change.", examples=_TIME_ZONES),
        weight=0.1,
    ),
    _opt_in(
        "subscriber.clicked_trigger_link",
        "One row per click on a Drip trigger link; context_ip is the clicker's.",
        Property("url", "The trigger link's URL.", examples=("https://www.example.com/t/{n}",)),
        Property("trigger_id", "Drip id of the trigger link.", examples=("777", 778, "90{n}")),
        _SOURCE,
        context=(_IP,),
        weight=0.5,
    ),
    _opt_in(
        "subscriber.visited_page",
        "One row per page visit tracked by Drip's JavaScript snippet.",
        Property(
            "url",
            "The page's URL.",
            examples=("https://www.example.com/p/{n}", "https://www.example.com/pricing"),
        ),
        weight=3,
    ),
    _opt_in(
        "subscriber.became_lead",
        "One row per subscriber who became a lead.",
        Property(
            "lead_score",
            "Lead score when the subscriber became a lead (decimal text).",
            examples=_LEAD_SCORES,
        ),
        weight=0.2,
    ),
    _opt_in(
        "subscriber.updated_lead_score",
        "One row per change of a subscriber's lead score.",
        Property("lead_score", "The new lead score (decimal text).", examples=_LEAD_SCORES),
        Property(
            "previous_lead_score",
            "The lead score before the change (decimal text).",
            examples=_LEAD_SCORES,
        ),
        weight=1.2,
    ),
    _opt_in(
        "subscriber.performed_custom_event",
        "One row per custom event recorded in Drip (through its API or JavaScript).",
        Property(
            "action",
            "The custom event's name.",
            examples=("Signed up", "Started trial", "Purchased"),
        ),
        Property(
            "properties",
            "Every property of the event as received (custom events carry arbitrary ones).",
            type="jsonb",
            examples=({"plan": "basic", "amount": 19}, {"plan": "pro", "amount": 49.5}, {}),
        ),
        weight=1.5,
    ),
)
"""Every collection, the six email collections first, in the order of the spec."""

BY_NAME: dict[str, Collection] = {c.name: c for c in COLLECTIONS}
BY_DRIP_EVENT: dict[str, Collection] = {s: c for c in COLLECTIONS for s in c.drip_events}
DEFAULT_ON: tuple[str, ...] = tuple(c.name for c in COLLECTIONS if c.on_by_default)
OPT_IN: tuple[str, ...] = tuple(c.name for c in COLLECTIONS if not c.on_by_default)

TRACKS_DESCRIPTION = "One row per event of every collection that is on, with the common columns."
COMMON_DESCRIPTIONS: dict[str, str] = {
    "id": "Event id: drip- and 40 hex characters of a sha256 over the event's key fields, "
    "its timestamp among them (Segment's messageId); the same in the collection table and in "
    "tracks. Unique: the key is (timestamp, id) and the id hashes the timestamp, so an id is "
    "stored once (an id not computed by drip-loader is unique together with its timestamp). "
    "Rows copied by drip-loader import-segment keep Segment's message id.",
    "anonymous_id": "The subscriber's email when Drip sent no user id (else NULL); "
    "drip:<subscriber id> when there is neither.",
    "user_id": "Drip's subscriber user_id when it is a non-empty string, else NULL.",
    "event": "The collection's slug, e.g. email_opened: joins tracks to the collection table.",
    "event_text": "Segment's event name, e.g. Email Opened.",
    "original_timestamp": "When the event happened (Drip's occurred_at).",
    "timestamp": "When the event happened (Drip's occurred_at).",
    "received_at": "When the loader first received the event (webhook arrival or file landing); "
    "kept by rebuild. Rows copied by drip-loader import-segment: when Segment received it.",
    "sent_at": "Same as received_at: Drip sends no send time.",
    "uuid_ts": "When this row was written to this table (a rebuild writes it again).",
    "context_library_name": "drip-loader.",
    "context_library_version": "The drip-loader version that wrote the row.",
    "context_integration_name": "drip (Segment's partner-source convention).",
    "context_integration_version": "1.0.0 (Segment's partner-source convention).",
    "context_traits_email": "The subscriber's email.",
    "context_ip": "IP address Drip sent with the event (link and trigger-link clicks), else NULL.",
    "context_user_agent": "User agent Drip sent with the event (link clicks), else NULL.",
    "context_drip_account_id": "Drip account id.",
    "context_drip_subscriber_id": "Drip subscriber id.",
}
"""One line per common column (spec §5), for the generated docs and COMMENTs."""

_IDENTIFIER_RE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_DRIP_EVENT_RE = re.compile(r"subscriber\.[a-z]+(?:_[a-z]+)*")
MAX_NAME = 40
"""Longest table name: its index names (``ix_<name>_received_at``) stay under Postgres' 63."""


def check(collections: tuple[Collection, ...] = COLLECTIONS) -> None:
    """Validate a registry (run on import over :data:`COLLECTIONS`).

    Raises:
        ValueError: a name that is not a plain lower-case identifier (no ``__``: the mapping
            statement uses it to keep aliases apart), a duplicate, a fixed or read column the
            collection does not have, a property column with two types, a missing description,
            a property read from events without examples for sample bodies.
    """
    seen: set[str] = set()
    events: set[str] = set()
    types: dict[str, PropertyType] = {}
    for c in collections:
        if not _IDENTIFIER_RE.fullmatch(c.name) or len(c.name) > MAX_NAME:
            raise ValueError(f"collection name {c.name!r} is not a plain identifier")
        if c.name in seen or c.name in ("tracks", "subscribers"):
            raise ValueError(f"collection {c.name!r} is defined twice or shadows a table")
        seen.add(c.name)
        if not c.description or not c.event_text or "'" in c.event_text:
            raise ValueError(f"collection {c.name!r} needs a description and a plain event_text")
        if len(set(c.columns)) != len(c.columns) or set(c.columns) & set(COMMON_DESCRIPTIONS):
            raise ValueError(f"collection {c.name!r} repeats a column")
        for p in c.properties:
            if not _IDENTIFIER_RE.fullmatch(p.column) or not p.description:
                raise ValueError(f"property {c.name}.{p.column!r}: plain name and description")
            if types.setdefault(p.column, p.type) != p.type:
                # the outbox claim returns each property column once, for every collection
                raise ValueError(f"property {p.column!r} has two types across collections")
            if not _IDENTIFIER_RE.fullmatch(p.path):
                raise ValueError(f"property {c.name}.{p.column}: key {p.path!r} is not plain")
            read = any(s.reads is None or p.column in s.reads for s in c.sources)
            fixed = all(p.column in dict(s.fixed) for s in c.sources)
            if read and not fixed and not p.examples and p.path not in SHARED_KEYS:
                # the sample would write no value: the column would stay NULL unnoticed
                raise ValueError(f"property {c.name}.{p.column} needs examples")
        for s in c.sources:
            if not _DRIP_EVENT_RE.fullmatch(s.drip_event) or s.drip_event in events:
                raise ValueError(f"Drip event {s.drip_event!r} is invalid or mapped twice")
            events.add(s.drip_event)
            named = [column for column, _ in s.fixed] + list(s.reads or ())
            if not set(named) <= set(c.columns):
                raise ValueError(f"{s.drip_event}: fixes or reads a column {c.name} lacks")
            if any("'" in value or "\\" in value for _, value in s.fixed):
                raise ValueError(f"{s.drip_event}: a fixed value must be plain text")
        for extra in c.context:
            if not _IDENTIFIER_RE.fullmatch(extra.key) or not extra.examples:
                raise ValueError(f"{c.name}.{extra.column}: plain key {extra.key!r} and examples")


CollectionNames = NewType("CollectionNames", tuple[str, ...])
"""Collection names checked against the registry, in its order (what :func:`resolve` returns)."""


def resolve(names: Sequence[str]) -> CollectionNames:
    """Collections named by a person, checked, in registry order.

    A collection is named by its table (``subscriber_applied_tag``) or by a Drip event it
    maps (``subscriber.applied_tag``).

    Raises:
        ConfigError: no names, or a name that is no collection (the message suggests the
            closest one).
    """
    unknown = [n for n in names if n not in BY_NAME and n not in BY_DRIP_EVENT]
    if unknown:
        raise ConfigError("; ".join(_unknown(name) for name in unknown))
    if not names:
        raise ConfigError("name at least one collection (see `drip-loader collections list`)")
    wanted = {BY_DRIP_EVENT[n].name if n in BY_DRIP_EVENT else n for n in names}
    return CollectionNames(tuple(c.name for c in COLLECTIONS if c.name in wanted))


def _unknown(name: str) -> str:
    """Why ``name`` names no collection, with the closest name when one is close."""
    close = difflib.get_close_matches(name, [*BY_NAME, *BY_DRIP_EVENT], n=1, cutoff=0.75)
    if close:
        return f"no collection named {name}: did you mean {close[0]}?"
    return (
        f"no collection named {name}: `drip-loader collections list` shows the "
        f"{len(COLLECTIONS)} collections (a table name, or a Drip event such as "
        "subscriber.applied_tag)"
    )


def email_collections(names: Sequence[str]) -> tuple[str, ...]:
    """Those of ``names`` (collection names) that are email collections: the reports and
    attribution read them."""
    return tuple(n for n in names if BY_NAME[n].email)


check()
