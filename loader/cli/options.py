"""Options that several commands share, with their help (defaults from the library)."""

from __future__ import annotations

from dataclasses import fields
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import ServeOptions

SERVE_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(ServeOptions)}
"""serve's defaults are ServeOptions' own: its options show them, never restate them."""

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="PostgreSQL URL (postgresql://user:pass@host:5432/db). Default: "
        "$DRIP_LOADER_DATABASE_URL, then $DATABASE_URL, else the embedded server.",
        show_default=False,
    ),
]
Schema = Annotated[
    str | None,
    typer.Option(
        "--schema",
        help="Warehouse schema (a plain lower-case identifier). Default: $DRIP_LOADER_SCHEMA or drip.",
        show_default=False,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
SegmentWriteKey = Annotated[
    str | None,
    typer.Option(
        "--segment-write-key",
        help="Write key of the Segment source (never printed). Default: $SEGMENT_WRITE_KEY, "
        "which is safer: options show in process lists.",
        show_default=False,
    ),
]
SegmentHost = Annotated[
    str | None,
    typer.Option(
        "--segment-host",
        help="Segment HTTP Tracking API base URL. Default: $DRIP_LOADER_SEGMENT_HOST or "
        "https://api.segment.io.",
        show_default=False,
    ),
]


class ReportFormat(StrEnum):
    """How ``report`` prints: for a person, or for a script."""

    table = "table"
    csv = "csv"
    json = "json"


class Touch(StrEnum):
    """What counts as an email touch for attribution."""

    click = "click"
    open = "open"


# `report` is a group, one subcommand per report: `drip-loader report daily --format csv`
# reads as before, and each report's --help shows only the options that apply to it
# (attribution has its own).
Since = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="Only rows with activity at or after this UTC date or time "
        "(2026-10-01 or 2026-10-01T12:00:00Z). Figures stay all-time.",
        show_default=False,
    ),
]
Until = Annotated[
    str | None,
    typer.Option(
        "--until",
        help="Only rows with activity before this UTC date or time (exclusive).",
        show_default=False,
    ),
]
Format = Annotated[
    ReportFormat,
    typer.Option("--format", help="table (for reading), csv or json (for scripts)."),
]
Out = Annotated[
    Path | None,
    typer.Option(
        "--out", help="Write the report to this file instead of stdout.", show_default=False
    ),
]


CollectionNames = Annotated[
    list[str] | None,
    typer.Argument(
        help="Collection (table) names, as `drip-loader collections list` shows them.",
        show_default=False,
    ),
]


DripApiToken = Annotated[
    str | None,
    typer.Option(
        "--drip-api-token",
        help="Drip API token (never printed). Default: $DRIP_LOADER_DRIP_API_TOKEN, which is "
        "safer: options show in process lists.",
        show_default=False,
    ),
]
DripAccountId = Annotated[
    str | None,
    typer.Option(
        "--drip-account-id",
        help="Drip account id. Default: $DRIP_LOADER_DRIP_ACCOUNT_ID, else the only account "
        "the token reaches.",
        show_default=False,
    ),
]
DripApiUrl = Annotated[
    str | None,
    typer.Option(
        "--drip-api-url",
        help="Drip API base URL, including /v2. Default: $DRIP_LOADER_DRIP_API_URL or "
        "https://api.getdrip.com/v2.",
        show_default=False,
    ),
]
