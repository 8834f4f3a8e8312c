"""The collection registry: the one place that says what a collection is (spec §2, §5, §9).

A collection is a warehouse table of one kind of Drip event, laid out like Segment's
(the common columns of spec §5, plus its property columns), with a row per event in
``tracks``.  Everything per collection is derived from :data:`COLLECTIONS`: the
SQLAlchemy metadata (:mod:`loader.tables`), the mapping statement, the backfill, rebuild's
table list and the outbox claim (:mod:`loader.mapping`), ``status``, ``sample`` and the
``collections`` commands.  Adding a collection is an entry here and an alembic revision
that creates its table and its ``_collections`` row.

The six email collections of Segment's Drip source are on by default; the other 22 Drip
events are opt-in collections (spec §9), named mechanically from the Drip event.  Whether
each is on is stored in the warehouse (``_collections``), not here.

Pure data, no I/O.  Names are validated on import: they end up in SQL as identifiers
(quoted anyway) and as literals.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NewType

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


@dataclass(frozen=True)
class Context:
    """A context column (spec §5) some collections fill from a property."""

    column: ContextColumn
    key: str


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


_EMAIL_ID = Property("email_id", "Drip id of the email.")
_EMAIL_SUBJECT = Property("email_subject", "Subject line of the email.")
_DELIVERY_ID = Property("delivery_id", "Drip id of the delivery of the email to this subscriber.")
_EMAIL = (_EMAIL_ID, _EMAIL_SUBJECT, _DELIVERY_ID)
_CLICK_CONTEXT = (Context("context_ip", "ip_address"), Context("context_user_agent", "user_agent"))


def _email(
    drip_event: str, name: str, event_text: str, description: str, *extra: Property
) -> Collection:
    context = _CLICK_CONTEXT if name == "email_link_clicked" else ()
    return Collection(
        name,
        event_text,
        (Source(drip_event),),
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
    drip_event: str, description: str, *properties: Property, context: tuple[Context, ...] = ()
) -> Collection:
    return Collection(
        opt_in_name(drip_event),
        opt_in_event_text(drip_event),
        (Source(drip_event),),
        properties,
        description,
        context,
    )


_SOURCE = Property("source", "What made the change, as Drip reports it (e.g. drip, api, import).")
_CAMPAIGN = (
    Property("campaign_id", "Drip id of the campaign (email series)."),
    Property("campaign_name", "Name of the campaign."),
)
_VALUE = Property("value", "The new value.")
_PREVIOUS = Property("previous_value", "The value before the change.")
_IDENTIFIER = Property("identifier", "Which field changed (the custom field or alias name).")
_TAG = Property("tag", "The tag.")
_URL = Property("url", "The URL.")

COLLECTIONS: tuple[Collection, ...] = (
    _email(
        "subscriber.received_email",
        "email_delivered",
        "Email Delivered",
        "One row per email Drip delivered to a subscriber (webhook is opt-in in Drip).",
    ),
    _email(
        "subscriber.opened_email",
        "email_opened",
        "Email Opened",
        "One row per open of an email.",
    ),
    _email(
        "subscriber.clicked_email",
        "email_link_clicked",
        "Email Link Clicked",
        "One row per click on a link in an email; context_ip and context_user_agent are the clicker's.",
        Property("link_url", "The URL clicked.", key="url"),
    ),
    Collection(
        "email_unsubscribed",
        "Email Unsubscribed",
        (
            Source(
                "subscriber.unsubscribed_from_campaign",
                fixed=(("unsubscribe_scope", "campaign"),),
            ),
            Source(
                "subscriber.unsubscribed_all",
                fixed=(("unsubscribe_scope", "all"),),
                reads=(),
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
    ),
    _email(
        "subscriber.complained",
        "email_marked_as_spam",
        "Email Marked as Spam",
        "One row per email the subscriber marked as spam.",
    ),
    _opt_in("subscriber.created", "One row per subscriber created in Drip."),
    _opt_in("subscriber.deleted", "One row per subscriber deleted from Drip."),
    _opt_in(
        "subscriber.subscribed_to_email_marketing",
        "One row per subscriber who opted in to email marketing.",
    ),
    _opt_in("subscriber.reactivated", "One row per subscriber reactivated."),
    _opt_in("subscriber.became_non_prospect", "One row per subscriber marked as non-prospect."),
    _opt_in(
        "subscriber.marked_as_deliverable",
        "One row per subscriber marked as deliverable.",
        _SOURCE,
    ),
    _opt_in(
        "subscriber.marked_as_undeliverable",
        "One row per subscriber marked as undeliverable.",
        _SOURCE,
    ),
    _opt_in(
        "subscriber.subscribed_to_campaign",
        "One row per subscription of a subscriber to a campaign.",
        *_CAMPAIGN,
    ),
    _opt_in(
        "subscriber.removed_from_campaign",
        "One row per removal of a subscriber from a campaign.",
        *_CAMPAIGN,
    ),
    _opt_in(
        "subscriber.completed_campaign",
        "One row per subscriber who reached the end of a campaign.",
        *_CAMPAIGN,
    ),
    _opt_in("subscriber.applied_tag", "One row per tag applied to a subscriber.", _TAG),
    _opt_in("subscriber.removed_tag", "One row per tag removed from a subscriber.", _TAG),
    _opt_in(
        "subscriber.updated_custom_field",
        "One row per change of a subscriber's custom field.",
        _IDENTIFIER,
        _VALUE,
        _PREVIOUS,
        _SOURCE,
    ),
    _opt_in(
        "subscriber.updated_alias",
        "One row per change of a subscriber's alias.",
        _IDENTIFIER,
        _VALUE,
        _PREVIOUS,
        _SOURCE,
    ),
    _opt_in(
        "subscriber.updated_email_address",
        "One row per change of a subscriber's email address.",
        Property("value", "The new email address."),
        Property("previous_value", "The email address before the change."),
        _SOURCE,
    ),
    _opt_in(
        "subscriber.updated_lifetime_value",
        "One row per change of a subscriber's lifetime value.",
        Property("value", "The new lifetime value (decimal text)."),
        Property("previous_value", "The lifetime value before the change (decimal text)."),
        _SOURCE,
    ),
    _opt_in(
        "subscriber.updated_time_zone",
        "One row per change of a subscriber's time zone.",
        Property("value", "The new time zone (IANA name)."),
        Property("previous_value", "The time zone before the change."),
    ),
    _opt_in(
        "subscriber.clicked_trigger_link",
        "One row per click on a Drip trigger link; context_ip is the clicker's.",
        Property("url", "The trigger link's URL."),
        Property("trigger_id", "Drip id of the trigger link."),
        _SOURCE,
        context=(Context("context_ip", "ip_address"),),
    ),
    _opt_in(
        "subscriber.visited_page",
        "One row per page visit tracked by Drip's JavaScript snippet.",
        Property("url", "The page's URL."),
    ),
    _opt_in(
        "subscriber.became_lead",
        "One row per subscriber who became a lead.",
        Property("lead_score", "Lead score when the subscriber became a lead (decimal text)."),
    ),
    _opt_in(
        "subscriber.updated_lead_score",
        "One row per change of a subscriber's lead score.",
        Property("lead_score", "The new lead score (decimal text)."),
        Property("previous_lead_score", "The lead score before the change (decimal text)."),
    ),
    _opt_in(
        "subscriber.performed_custom_event",
        "One row per custom event recorded in Drip (through its API or JavaScript).",
        Property("action", "The custom event's name."),
        Property(
            "properties",
            "Every property of the event as received (custom events carry arbitrary ones).",
            type="jsonb",
        ),
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
            collection does not have, a property column with two types, a missing description.
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
            if not _IDENTIFIER_RE.fullmatch(extra.key):
                raise ValueError(f"{c.name}.{extra.column}: key {extra.key!r} is not plain")


CollectionNames = NewType("CollectionNames", tuple[str, ...])
"""Collection names checked against the registry, in its order (what :func:`resolve` returns)."""


def resolve(names: Sequence[str]) -> CollectionNames:
    """Collection names given by a person, checked, in registry order.

    Raises:
        ConfigError: no names, or a name that is no collection (the message lists the valid ones).
    """
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ConfigError(
            f"no collection named {', '.join(unknown)}: use one of {', '.join(BY_NAME)}"
        )
    if not names:
        raise ConfigError("name at least one collection (see `drip-loader collections list`)")
    wanted = set(names)
    return CollectionNames(tuple(c.name for c in COLLECTIONS if c.name in wanted))


check()
