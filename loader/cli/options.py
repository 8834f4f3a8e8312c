"""Options that several commands share, with their help (defaults and environment variables
named from the library's constants, never restated)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import (
    DATABASE_URL_ENV,
    DEFAULT_DRIP_API_URL,
    DEFAULT_SCHEMA,
    DEFAULT_SEGMENT_HOST,
    DRIP_ACCOUNT_ENV,
    DRIP_API_TOKEN_ENV,
    DRIP_API_URL_ENV,
    SEGMENT_WRITE_KEY_ENV,
    ServeOptions,
)
from .render import Format

SERVE_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(ServeOptions)}
"""serve's defaults are ServeOptions' own: its options show them, never restate them."""

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        help="PostgreSQL URL (postgresql://user:pass@host:5432/db). Default: "
        f"${DATABASE_URL_ENV}, then $DATABASE_URL, else the embedded server.",
        show_default=False,
    ),
]
Schema = Annotated[
    str | None,
    typer.Option(
        "--schema",
        metavar="NAME",
        help="Warehouse schema (a plain lower-case identifier). Default: $DRIP_LOADER_SCHEMA "
        f"or {DEFAULT_SCHEMA}.",
        show_default=False,
    ),
]
FormatOption = Annotated[
    Format,
    typer.Option("--format", help="table (for reading), csv or json (for scripts)."),
]
SegmentWriteKey = Annotated[
    str | None,
    typer.Option(
        "--segment-write-key",
        metavar="KEY",
        help=f"Write key of the Segment source (never printed). Default: ${SEGMENT_WRITE_KEY_ENV}, "
        "which is safer: options show in process lists.",
        show_default=False,
    ),
]
SegmentHost = Annotated[
    str | None,
    typer.Option(
        "--segment-host",
        metavar="URL",
        help="Segment HTTP Tracking API base URL. Default: $DRIP_LOADER_SEGMENT_HOST or "
        f"{DEFAULT_SEGMENT_HOST}.",
        show_default=False,
    ),
]

# `report` is a group, one subcommand per report: `drip-loader report daily --format csv`
# reads as before, and each report's --help shows only the options that apply to it
# (attribution has its own).
Since = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="TIME",
        help="Only rows with activity at or after this UTC date or time "
        "(2026-10-01 or 2026-10-01T12:00:00Z). Figures stay all-time. Default: no bound.",
        show_default=False,
    ),
]
Until = Annotated[
    str | None,
    typer.Option(
        "--until",
        metavar="TIME",
        help="Only rows with activity before this UTC date or time (exclusive). Default: no bound.",
        show_default=False,
    ),
]
Out = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Write the result to this file instead of stdout (its directory must exist).",
        show_default=False,
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
        metavar="TOKEN",
        help=f"Drip API token (never printed). Default: ${DRIP_API_TOKEN_ENV}, which is "
        "safer: options show in process lists.",
        show_default=False,
    ),
]
DripAccountId = Annotated[
    str | None,
    typer.Option(
        "--drip-account-id",
        metavar="ID",
        help=f"Drip account id. Default: ${DRIP_ACCOUNT_ENV}, else the only account "
        "the token reaches.",
        show_default=False,
    ),
]
DripApiUrl = Annotated[
    str | None,
    typer.Option(
        "--drip-api-url",
        metavar="URL",
        help=f"Drip API base URL, including /v2. Default: ${DRIP_API_URL_ENV} or "
        f"{DEFAULT_DRIP_API_URL}.",
        show_default=False,
    ),
]
