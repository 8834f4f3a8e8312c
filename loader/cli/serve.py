"""The serve command."""

from __future__ import annotations

from typing import Annotated

import typer

from ..config import ServeOptions
from .edge import err, settings
from .options import (
    SERVE_DEFAULTS,
    DatabaseUrl,
    FormatOption,
    Schema,
    SegmentHost,
    SegmentWriteKey,
)
from .render import Format, render


def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            metavar="ADDRESS",
            help="Address to listen on (0.0.0.0: all interfaces, e.g. in a container).",
        ),
    ] = SERVE_DEFAULTS["host"],
    port: Annotated[
        int,
        typer.Option(
            "--port", min=0, max=65535, help="TCP port; 0 picks a free one (printed at start)."
        ),
    ] = SERVE_DEFAULTS["port"],
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    max_body_bytes: Annotated[
        int,
        typer.Option(
            "--max-body-bytes",
            min=1,
            help="Answer 413 to larger bodies (their head is kept in _rejects).",
        ),
    ] = SERVE_DEFAULTS["max_body_bytes"],
    no_migrate: Annotated[
        bool,
        typer.Option(
            "--no-migrate", help="Do not upgrade the schema first (fail if it is behind)."
        ),
    ] = False,
    transform_interval: Annotated[
        float,
        typer.Option(
            "--transform-interval",
            min=0.05,
            help="Seconds between transform polls when idle (freshness).",
        ),
    ] = SERVE_DEFAULTS["transform_interval"],
    writers: Annotated[
        int,
        typer.Option(
            "--writers", min=1, help="Database connections committing groups of requests."
        ),
    ] = SERVE_DEFAULTS["group_writers"],
    retry_after: Annotated[
        int,
        typer.Option("--retry-after", min=1, help="Seconds in the Retry-After header of a 429."),
    ] = SERVE_DEFAULTS["retry_after"],
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            "--forwarded-allow-ips",
            metavar="ADDRESSES",
            help="Comma-separated proxy addresses trusted for X-Forwarded-For ('*': any).",
        ),
    ] = SERVE_DEFAULTS["forwarded_allow_ips"],
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request (the token is redacted).")
    ] = SERVE_DEFAULTS["access_log"],
    body_timeout: Annotated[
        float,
        typer.Option("--body-timeout", min=0.1, help="Seconds to receive a body; then 408."),
    ] = SERVE_DEFAULTS["body_timeout"],
    max_connections: Annotated[
        int,
        typer.Option("--max-connections", min=1, help="Open connections at most; then 503."),
    ] = SERVE_DEFAULTS["max_connections"],
    emit: Annotated[
        bool,
        typer.Option("--emit", help="Also forward transformed events to Segment (see emit)."),
    ] = SERVE_DEFAULTS["emit"],
    degraded_after: Annotated[
        float,
        typer.Option(
            "--degraded-after",
            min=0.1,
            help="Seconds the background transform or forwarding may keep failing before "
            "/healthz says degraded (still 200).",
        ),
    ] = SERVE_DEFAULTS["degraded_after"],
    segment_write_key: SegmentWriteKey = None,
    segment_host: SegmentHost = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Receive Drip webhooks at /webhooks/drip/$DRIP_LOADER_WEBHOOK_TOKEN; keep the tables fresh.

    The token (16 to 256 URL-safe characters) comes from $DRIP_LOADER_WEBHOOK_TOKEN only, never from an option: options show in process lists. Ctrl-C or SIGTERM stops after the requests in flight (exit 0) and prints what was received.
    """
    from ..serve.server import run_server

    options = ServeOptions.from_env(
        host=host,
        port=port,
        max_body_bytes=max_body_bytes,
        migrate_first=not no_migrate,
        transform_interval=transform_interval,
        group_writers=writers,
        retry_after=retry_after,
        forwarded_allow_ips=forwarded_allow_ips,
        access_log=access_log,
        body_timeout=body_timeout,
        max_connections=max_connections,
        emit=emit,
        degraded_after=degraded_after,
    )
    warehouse = settings(
        database_url, schema, segment_write_key=segment_write_key, segment_host=segment_host
    )
    render(run_server(warehouse, options, announce=err), fmt)
