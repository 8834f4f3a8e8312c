"""The drip group: the Drip account through its REST API."""

from __future__ import annotations

from typing import Annotated

import typer

from ..config import DEFAULT_MAX_WAIT
from .edge import Commands, drip_settings, err, settings
from .options import DatabaseUrl, DripAccountId, DripApiToken, DripApiUrl, FormatOption, Schema
from .progress import page_bar
from .render import Format, render

drip_app = Commands(
    name="drip",
    help="Your Drip account through its REST API: register the webhook, sync Drip's own records.",
    no_args_is_help=True,
)
webhook_app = Commands(
    name="webhook",
    help="The Drip webhook that sends events to `drip-loader serve`.",
    no_args_is_help=True,
)
drip_app.add_typer(webhook_app)


@webhook_app.command("create")
def drip_webhook_create(
    url: Annotated[
        str,
        typer.Option(
            "--url",
            metavar="URL",
            help="Public URL of serve's webhook route: https://<host>/webhooks/drip/<token>.",
            show_default=False,
        ),
    ],
    allow_http: Annotated[
        bool, typer.Option("--allow-http", help="Accept an http:// URL (a test setup).")
    ] = False,
    drip_api_token: DripApiToken = None,
    drip_account_id: DripAccountId = None,
    drip_api_url: DripApiUrl = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Register the webhook for every Drip event the warehouse knows, received email included."""
    from ..drip_api.webhooks import create_webhook

    drip = drip_settings(drip_api_token, drip_account_id, drip_api_url)
    render(create_webhook(drip, url=url, allow_http=allow_http), fmt)


@webhook_app.command("list")
def drip_webhook_list(
    drip_api_token: DripApiToken = None,
    drip_account_id: DripAccountId = None,
    drip_api_url: DripApiUrl = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Show the account's webhooks (tokens masked); warn about missing events."""
    from ..drip_api.webhooks import list_webhooks

    render(list_webhooks(drip_settings(drip_api_token, drip_account_id, drip_api_url)), fmt)


@webhook_app.command("delete")
def drip_webhook_delete(
    webhook_id: Annotated[
        str, typer.Argument(help="The webhook's id (see drip webhook list).", show_default=False)
    ],
    drip_api_token: DripApiToken = None,
    drip_account_id: DripAccountId = None,
    drip_api_url: DripApiUrl = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Delete one webhook (one already gone counts as done)."""
    from ..drip_api.webhooks import delete_webhook

    drip = drip_settings(drip_api_token, drip_account_id, drip_api_url)
    render(delete_webhook(drip, webhook_id=webhook_id), fmt)


@drip_app.command("sync")
def drip_sync(
    max_wait: Annotated[
        float,
        typer.Option(
            "--max-wait",
            min=0,
            help="Seconds this run may wait for Drip's rate limit and retries in all; past "
            "it the sync stops (exit 1), unfinished tables left as they were.",
        ),
    ] = DEFAULT_MAX_WAIT,
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    drip_api_token: DripApiToken = None,
    drip_account_id: DripAccountId = None,
    drip_api_url: DripApiUrl = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Copy subscribers, campaigns, broadcasts, workflows, tags and custom fields from Drip."""
    from ..drip_api.sync import sync_account

    drip = drip_settings(drip_api_token, drip_account_id, drip_api_url)
    warehouse = settings(database_url, schema)
    with page_bar() as bar:
        report = sync_account(
            warehouse,
            drip,
            max_wait=max_wait,
            announce=err if bar is None else bar.announce,
            progress=bar,
        )
    render(report, fmt)
