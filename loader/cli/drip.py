"""The drip group: the Drip account through its REST API."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from .edge import err as _err
from .edge import guard as _guard
from .edge import settings as _settings
from .options import DatabaseUrl, DripAccountId, DripApiToken, DripApiUrl, JsonFlag, Schema
from .progress import PageBar as _PageBar

drip_app = typer.Typer(
    name="drip",
    help="Your Drip account through its REST API: register the webhook, sync Drip's own records.",
    no_args_is_help=True,
)
webhook_app = typer.Typer(
    name="webhook",
    help="The Drip webhook that sends events to `drip-loader serve`.",
    no_args_is_help=True,
)


def _drip_settings(token: str | None, account_id: str | None, api_url: str | None) -> Any:
    from ..drip_api.client import DripSettings

    return DripSettings.from_env(token=token, account_id=account_id, api_url=api_url)


@webhook_app.command("create")
def drip_webhook_create(
    url: Annotated[
        str,
        typer.Option(
            "--url",
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
) -> None:
    """Register the webhook for every event the warehouse maps, received email included."""
    from ..drip_api.webhooks import create_webhook

    def action() -> Any:
        drip = _drip_settings(drip_api_token, drip_account_id, drip_api_url)
        return create_webhook(drip, url=url, allow_http=allow_http)

    for line in _guard(action).lines():
        typer.echo(line)


@webhook_app.command("list")
def drip_webhook_list(
    drip_api_token: DripApiToken = None,
    drip_account_id: DripAccountId = None,
    drip_api_url: DripApiUrl = None,
) -> None:
    """Show the account's webhooks (tokens masked); warn about missing events."""
    from ..drip_api.webhooks import list_webhooks

    def action() -> Any:
        return list_webhooks(_drip_settings(drip_api_token, drip_account_id, drip_api_url))

    for line in _guard(action).lines():
        typer.echo(line)


@webhook_app.command("delete")
def drip_webhook_delete(
    webhook_id: Annotated[
        str, typer.Argument(help="The webhook's id (see drip webhook list).", show_default=False)
    ],
    drip_api_token: DripApiToken = None,
    drip_account_id: DripAccountId = None,
    drip_api_url: DripApiUrl = None,
) -> None:
    """Delete one webhook (one already gone counts as done)."""
    from ..drip_api.webhooks import delete_webhook

    def action() -> Any:
        drip = _drip_settings(drip_api_token, drip_account_id, drip_api_url)
        return delete_webhook(drip, webhook_id=webhook_id)

    for line in _guard(action).lines():
        typer.echo(line)


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
    ] = 3600,
    database_url: DatabaseUrl = None,
    schema: Schema = None,
    drip_api_token: DripApiToken = None,
    drip_account_id: DripAccountId = None,
    drip_api_url: DripApiUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Copy subscribers, campaigns, broadcasts, workflows, tags and custom fields from Drip."""
    from ..drip_api.sync import sync_account

    def action() -> Any:
        drip = _drip_settings(drip_api_token, drip_account_id, drip_api_url)
        settings = _settings(database_url, schema)
        if sys.stderr.isatty() and not as_json:
            with _PageBar() as bar:
                return sync_account(
                    settings, drip, max_wait=max_wait, announce=bar.announce, progress=bar
                )
        return sync_account(settings, drip, max_wait=max_wait, announce=_err)

    report = _guard(action)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    left = (
        f"; {report.rate_remaining:,} requests left this hour"
        if report.rate_remaining is not None
        else ""
    )
    typer.echo(
        f"Drip sync of account {report.account_id} in {report.seconds:.2f} s: "
        f"{report.requests:,} request(s), waited {report.waited_seconds:g} s "
        f"({report.rate_limited} rate-limited, {report.retried} retried){left}"
    )
    typer.echo(f"  {'table':<22}{'in Drip':>10}{'new':>10}{'deleted':>10}")
    for table, done in report.tables.items():
        typer.echo(f"  {table:<22}{done.seen:>10,}{done.added:>10,}{done.deleted:>10,}")
