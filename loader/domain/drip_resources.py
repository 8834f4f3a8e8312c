"""The Drip records ``drip sync`` copies, in one registry (contract ``drip-api.md`` §5); pure.

One entry per synced resource: its endpoint, envelope key, page size, filters, its table and
the documented fields as typed columns.  ``loader.tables`` builds the tables from it and
``loader.drip_sync`` fetches and converts records with it, so a field is described once.

Conversion is forgiving: a key that is missing, null or of another type than documented
becomes NULL in its column (the record as received is kept whole in ``raw``); an odd value
must never fail a sync.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

Kind = Literal["text", "bool", "int", "bigint", "numeric", "timestamp", "json"]

SYNC_COMMAND = "drip sync"
"""The ``_runs.command`` of a sync (``status`` reads the last one)."""


@dataclass(frozen=True)
class DripResource:
    """One resource of Drip's API and the warehouse table it is synced into."""

    name: str
    """What a person calls it (``subscribers``); the key of :data:`RESOURCES`."""
    table: str
    path: str
    """Endpoint under ``/:account_id``."""
    envelope: str
    """Key of the array in the answer."""
    key: str
    """Primary-key column: ``id``, or the bare string for tags and custom fields."""
    fields: tuple[tuple[str, Kind], ...]
    per_page: int | None = None
    """The largest page the endpoint allows; None: not paginated."""
    params: tuple[tuple[str, str], ...] = ()
    bare_strings: bool = False
    """The endpoint lists strings, not objects (tags, custom field identifiers)."""


_T: Kind = "text"

RESOURCES: dict[str, DripResource] = {
    r.name: r
    for r in (
        DripResource(
            "subscribers",
            "drip_subscribers",
            "subscribers",
            "subscribers",
            "id",
            (
                ("id", _T),
                ("status", _T),
                ("initial_status", _T),
                ("email", _T),
                ("first_name", _T),
                ("last_name", _T),
                ("address1", _T),
                ("address2", _T),
                ("city", _T),
                ("state", _T),
                ("zip", _T),
                ("country", _T),
                ("phone", _T),
                ("sms_number", _T),
                ("sms_consent", "bool"),
                ("eu_consent", _T),
                ("time_zone", _T),
                ("utc_offset", "int"),
                ("visitor_uuid", _T),
                ("custom_fields", "json"),
                ("tags", "json"),
                ("ip_address", _T),
                ("user_agent", _T),
                ("original_referrer", _T),
                ("landing_url", _T),
                ("prospect", "bool"),
                ("lead_score", "numeric"),
                ("base_lead_score", "numeric"),
                ("lifetime_value", "bigint"),
                ("user_id", _T),
                ("created_at", "timestamp"),
                ("href", _T),
            ),
            per_page=1000,
            params=(("status", "all"),),  # the API's default is active subscribers only
        ),
        DripResource(
            "campaigns",
            "drip_campaigns",
            "campaigns",
            "campaigns",
            "id",
            (
                ("id", _T),
                ("status", _T),
                ("name", _T),
                ("from_name", _T),
                ("from_email", _T),
                ("postal_address", _T),
                ("minutes_from_midnight", "int"),
                ("localize_sending_time", "bool"),
                ("days_of_the_week_mask", _T),
                ("start_immediately", "bool"),
                ("double_optin", "bool"),
                ("send_to_confirmation_page", "bool"),
                ("use_custom_confirmation_page", "bool"),
                ("confirmation_url", _T),
                ("notify_subscribe_email", _T),
                ("notify_unsubscribe_email", _T),
                ("bcc", _T),
                ("email_count", "int"),
                ("active_subscriber_count", "int"),
                ("unsubscribed_subscriber_count", "int"),
                ("created_at", "timestamp"),
                ("href", _T),
            ),
            per_page=100,
            params=(("status", "all"),),
        ),
        DripResource(
            "broadcasts",
            "drip_broadcasts",
            "broadcasts",
            "broadcasts",
            "id",
            (
                ("id", _T),
                ("status", _T),
                ("name", _T),
                ("subject", _T),
                ("from_name", _T),
                ("from_email", _T),
                ("postal_address", _T),
                ("localize_sending_time", "bool"),
                ("send_at", "timestamp"),
                ("bcc", _T),
                ("html_body", _T),
                ("text_body", _T),
                ("preview_url", _T),
                ("created_at", "timestamp"),
                ("href", _T),
            ),
            per_page=100,
            params=(("status", "all"),),  # deleted broadcasts are hidden by default
        ),
        DripResource(
            "workflows",
            "drip_workflows",
            "workflows",
            "workflows",
            "id",
            (
                ("id", _T),
                ("name", _T),
                ("status", _T),
                ("created_at", "timestamp"),
                ("href", _T),
            ),
            per_page=100,
            params=(("status", "all"),),
        ),
        DripResource(
            "tags", "drip_tags", "tags", "tags", "name", (("name", _T),), bare_strings=True
        ),
        DripResource(
            "custom_fields",
            "drip_custom_fields",
            "custom_field_identifiers",
            "custom_field_identifiers",
            "identifier",
            (("identifier", _T),),
            bare_strings=True,
        ),
    )
}
"""Synced in this order (subscribers first: the largest, and the one most worth having)."""

SYSTEM_COLUMNS = ("raw", "synced_at", "deleted_at")


def _convert(kind: Kind, value: Any) -> Any:
    if value is None:
        return None
    if kind == "text":
        # ids are strings in the contract; a number would still be one id, as text
        return value if isinstance(value, str) else str(value) if _scalar(value) else None
    if kind == "bool":
        return value if isinstance(value, bool) else None
    if kind in ("int", "bigint"):
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None
        try:
            return Decimal(str(value))
        except ArithmeticError:
            return None
    if kind == "timestamp":
        return _timestamp(value)
    return value  # json: any JSON value


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_row(resource: DripResource, record: Any) -> dict[str, Any] | None:
    """The typed columns and ``raw`` of one record, or None when it has no usable key."""
    if resource.bare_strings:
        if not isinstance(record, str) or not record:
            return None
        return {resource.key: record, "raw": record}
    if not isinstance(record, dict):
        return None
    row = {name: _convert(kind, record.get(name)) for name, kind in resource.fields}
    if not row[resource.key]:
        return None
    row["raw"] = record
    return row
