"""A dbt sources file for the warehouse (``drip-loader dbt-sources``): generated, never kept by hand.

It declares every analyst-facing relation of the schema (the collection tables, ``tracks``,
``subscribers``, the ``drip_*`` tables of ``drip sync`` and the views of ``sql/views/``;
never the ``_`` bookkeeping tables), with
a description for each column and the tests an analytics engineer expects of Segment-like
event tables: ``unique`` and ``not_null`` on ``id``, ``not_null`` on ``event``,
``timestamp`` and ``received_at``, ``accepted_values`` on ``event``, and a ``relationships``
test from each collection's ``id`` to ``tracks.id`` (every event has its row in both).

What comes from where, so nothing is copied: the collections from the registry
(:mod:`loader.domain.registry`), every table, column and description from the metadata
(:func:`loader.warehouse.tables.build_metadata`, whose comments revision 0007 put in Postgres), the
views from the files in ``sql/views/`` (name and description from each file's header
comment).  Only the views' column descriptions are written here.

Every collection is declared, on or off: its table exists either way, so the file depends
only on the loader's version and the schema name (it can be committed to a dbt project and
changes only when the loader's tables do), and a collection that is off is an empty table
whose tests pass.

**Freshness** is declared on ``tracks`` only: every event of every collection has a row
there, so its newest ``received_at`` says whether the loader is delivering.  Per-collection
thresholds would raise false alarms: Email Delivered is opt-in at Drip (many accounts have
none, spec §1), bounces and spam reports are rare, and an opt-in collection can stay empty.

``received_at`` has a BRIN index only (a B-tree cost an insertion per row on every event
table; see :mod:`loader.warehouse.tables`), and ``max(received_at)`` over a whole table cannot use
BRIN, so a plain freshness query reads every row.  The freshness ``filter`` bounds it to
a recent range, ``received_at >= now() - <window>``: a range condition that BRIN answers by
skipping every block range older than the window, so the query reads only the newest
blocks (events are appended in ``received_at`` order).  The window is twice the
``error_after`` threshold: when the newest row is inside it, dbt reports its real age;
when none is, the filtered ``max`` is NULL, which dbt takes as infinitely old, and the
status is the same error the unfiltered query would give.

The YAML is written by a small block-style emitter: keys are plain identifiers and every
string is a JSON string (a valid YAML double-quoted scalar), so no YAML library is needed
and the same input gives the same bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Column, Table

from ..domain import registry
from ..domain.drip_resources import RESOURCES
from ..warehouse.sqlfiles import sql_dir
from ..warehouse.tables import build_metadata

FRESHNESS_TABLE = "tracks"
WARN_AFTER_HOURS = 12
ERROR_AFTER_HOURS = 24
FRESHNESS_FILTER = f"received_at >= now() - interval '{2 * ERROR_AFTER_HOURS} hours'"
"""The freshness query's WHERE clause: a range on ``received_at`` that BRIN can prune."""


VIEW_COLUMNS: dict[str, dict[str, str]] = {
    "campaign_unsubscribes": {
        "campaign_id": "Drip campaign id; NULL on the row of unsubscribes from all.",
        "campaign_name": "The campaign's latest name.",
        "unsubscribes": "Distinct people (user_id, else anonymous_id) who unsubscribed.",
        "first_at": "The first unsubscribe.",
        "last_at": "The last unsubscribe.",
    },
    "daily_email_activity": {
        "day": "UTC day of the events' timestamp.",
        "event": "Collection slug, e.g. email_opened.",
        "events": "Events that day.",
        "unique_people": "Distinct people (user_id, else anonymous_id) that day.",
    },
    "email_performance": {
        "email_id": "Drip email id.",
        "email_subject": "The email's latest subject.",
        "delivered": "Email Delivered events.",
        "opens": "Email Opened events.",
        "unique_opens": "Distinct recipients who opened.",
        "clicks": "Email Link Clicked events.",
        "unique_clicks": "Distinct recipients who clicked.",
        "bounces": "Email Bounced events.",
        "spam_reports": "Email Marked as Spam events.",
        "open_rate": "unique_opens / delivered; NULL without deliveries.",
        "click_rate": "unique_clicks / delivered; NULL without deliveries.",
        "click_to_open_rate": "unique_clicks / unique_opens; NULL without opens.",
        "first_event_at": "The email's first event.",
        "last_event_at": "The email's last event.",
    },
    "subscribers_webhook_and_api": {
        "id": "Drip subscriber id.",
        "in_webhooks": "Whether any webhook event of the subscriber was loaded (table subscribers).",
        "in_api": "Whether the last drip sync found the subscriber in Drip (not deleted).",
        "webhook_email": "Email in the snapshot of the subscriber's latest webhook event.",
        "webhook_status": "Status in that snapshot.",
        "webhook_tags": "Tags in that snapshot (JSON array).",
        "webhook_custom_fields": "Custom fields in that snapshot (JSON object).",
        "webhook_lead_score": "Lead score in that snapshot.",
        "webhook_lifetime_value": "Lifetime value in that snapshot.",
        "webhook_first_seen_at": "occurred_at of the subscriber's earliest webhook event.",
        "webhook_last_seen_at": "occurred_at of the event whose snapshot this is.",
        "api_email": "Email as Drip's API returned it at the last drip sync.",
        "api_status": "Status from Drip's API.",
        "api_tags": "Tags from Drip's API (JSON array).",
        "api_custom_fields": "Custom fields from Drip's API (JSON object).",
        "api_lead_score": "Lead score from Drip's API.",
        "api_lifetime_value": "Lifetime value from Drip's API.",
        "api_created_at": "When the subscriber was created in Drip (API).",
        "api_synced_at": "The last drip sync that saw the subscriber.",
        "api_deleted_at": "The first drip sync that no longer found the subscriber.",
    },
}
"""Descriptions of the views' columns, in the views' column order (a test compares them
with the views of a migrated warehouse)."""

_VIEW_TESTS: dict[str, dict[str, list[Any]]] = {
    "email_performance": {"email_id": ["unique", "not_null"]},
    "daily_email_activity": {"day": ["not_null"], "event": ["not_null"]},
    "campaign_unsubscribes": {"campaign_id": ["unique"]},
    "subscribers_webhook_and_api": {"id": ["unique", "not_null"]},
}
"""The grain of each view: one row per email; per day and event; per campaign (NULL once);
per subscriber."""


def sources_document(*, schema: str) -> dict[str, Any]:
    """The sources file of ``schema`` (already validated) as plain data, in file order."""
    metadata = build_metadata(schema)
    names = [c.name for c in registry.COLLECTIONS]
    tracks_id = f"source('{schema}', 'tracks')"
    tables = [
        _event_table(metadata.tables[f"{schema}.{name}"], (name,), in_tracks=tracks_id)
        for name in names
    ]
    tables.append(_event_table(metadata.tables[f"{schema}.tracks"], tuple(names), in_tracks=None))
    subscribers = metadata.tables[f"{schema}.subscribers"]
    tables.append(
        {
            "name": "subscribers",
            "description": subscribers.comment,
            "columns": [
                _column(
                    column.name,
                    _described(column),
                    ["unique", "not_null"] if column.name == "id" else [],
                )
                for column in subscribers.columns
            ],
        }
    )
    for resource in RESOURCES.values():
        # Drip's own records (drip sync): the key and bookkeeping columns, which the
        # metadata describes; the API's fields are as Drip documents them.
        table = metadata.tables[f"{schema}.{resource.table}"]
        key_tests = {resource.key: ["unique", "not_null"], "synced_at": ["not_null"]}
        tables.append(
            {
                "name": table.name,
                "description": table.comment,
                "columns": [
                    _column(column.name, _described(column), key_tests.get(column.name, []))
                    for column in table.columns
                    if column.comment
                ],
            }
        )
    for name, description in _views():
        tests = _VIEW_TESTS.get(name, {})
        tables.append(
            {
                "name": name,
                "description": description,
                "columns": [
                    _column(column, text, tests.get(column, []))
                    for column, text in VIEW_COLUMNS[name].items()
                ],
            }
        )
    return {
        "version": 2,
        "sources": [
            {
                "name": schema,
                "schema": schema,
                "description": "Drip email events loaded by drip-loader, laid out like "
                "Segment's Drip source (one table per collection, plus tracks).",
                "tables": tables,
            }
        ],
    }


def sources_yaml(*, schema: str) -> str:
    """The dbt sources file of ``schema`` (already validated), as YAML text."""
    header = (
        "# dbt sources of the drip-loader warehouse, written by `drip-loader dbt-sources`.\n"
        "# Generated: regenerate it after upgrading drip-loader instead of editing it.\n"
    )
    return header + "".join(f"{line}\n" for line in _yaml(sources_document(schema=schema), 0))


def _event_table(table: Table, events: tuple[str, ...], *, in_tracks: str | None) -> dict[str, Any]:
    """A collection table or ``tracks``: described columns and their tests.

    ``events`` are the values its ``event`` column takes (``accepted_values``);
    ``in_tracks`` is dbt's reference to ``tracks`` for a collection table (its ``id`` must
    be there too), None for ``tracks`` itself.
    """
    tests: dict[str, list[Any]] = {
        "id": ["unique", "not_null"],
        "event": [
            "not_null",
            {"accepted_values": {"arguments": {"values": list(events)}}},
        ],
        "timestamp": ["not_null"],
        "received_at": ["not_null"],
    }
    if in_tracks is not None:
        tests["id"].append({"relationships": {"arguments": {"to": in_tracks, "field": "id"}}})
    doc: dict[str, Any] = {"name": table.name, "description": table.comment}
    if table.name == FRESHNESS_TABLE:
        doc["config"] = {
            "loaded_at_field": "received_at",
            "freshness": {
                "warn_after": {"count": WARN_AFTER_HOURS, "period": "hour"},
                "error_after": {"count": ERROR_AFTER_HOURS, "period": "hour"},
                "filter": FRESHNESS_FILTER,
            },
        }
    doc["columns"] = [
        _column(column.name, _described(column), tests.get(column.name, []))
        for column in table.columns
    ]
    return doc


def _described(column: Column[Any]) -> str:
    """The column's description: its comment in the metadata (Postgres has it too)."""
    if not column.comment:
        raise ValueError(f"{column.table.name}.{column.name} has no description")
    return column.comment


def _column(name: str, description: str, tests: list[Any]) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "description": description}
    if tests:
        column["data_tests"] = tests
    return column


_VIEW_HEADER = re.compile(r"--\s*name:\s*([a-z_][a-z0-9_]*)\s*\(view\)\s*")


def _views() -> list[tuple[str, str]]:
    """``(name, description)`` of each view in ``sql/views/``, from its header comment."""
    views = []
    for path in sorted((sql_dir() / "views").glob("*.sql")):
        lines = path.read_text(encoding="utf-8").splitlines()
        found = _VIEW_HEADER.fullmatch(lines[0]) if lines else None
        if found is None:
            raise ValueError(f"{path} does not start with '-- name: <view> (view)'")
        comment = []
        for line in lines[1:]:
            if not line.startswith("--"):
                break
            comment.append(line.removeprefix("--").strip())
        views.append((found.group(1), " ".join(comment)))
    return views


_PLAIN_KEY = re.compile(r"[a-z_][a-z0-9_]*")


def _yaml(value: Mapping[str, Any] | list[Any], indent: int) -> Iterator[str]:
    """Block-style YAML lines of a mapping or a list (non-empty; of mappings, lists, scalars)."""
    pad = " " * indent
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not _PLAIN_KEY.fullmatch(key):
                raise ValueError(f"not a plain YAML key: {key!r}")
            if isinstance(item, Mapping | list) and item:
                yield f"{pad}{key}:"
                yield from _yaml(item, indent + 2)
            else:
                yield f"{pad}{key}: {_scalar(item)}"
        return
    for item in value:
        if isinstance(item, Mapping) and item:
            first, *rest = _yaml(item, indent + 2)
            yield f"{pad}- {first[indent + 2 :]}"
            yield from rest
        elif isinstance(item, list) and item:
            raise ValueError("a list directly in a list is not needed here")
        else:
            yield f"{pad}- {_scalar(item)}"


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping | list):  # empty
        return "{}" if isinstance(value, Mapping) else "[]"
    raise TypeError(f"cannot write {type(value).__name__} as YAML")
