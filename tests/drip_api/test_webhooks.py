"""drip webhook create/list/delete, and the drip commands as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from loader.cli.app import app
from loader.config import DripSettings
from loader.domain import registry
from loader.drip_api.webhooks import (
    check_receiver_url,
    create_webhook,
    delete_webhook,
    list_webhooks,
    mapped_events,
    mask_url,
    webhook_events,
)
from loader.errors import ConfigError
from tests.support.fake_drip import ACCOUNT, TOKEN, FakeDrip

RECEIVER_TOKEN = "Zq8kYv3N_t0ken-of-serve"
URL = f"https://drip.example.com/webhooks/drip/{RECEIVER_TOKEN}"
MAPPED = [
    "subscriber.bounced",
    "subscriber.clicked_email",
    "subscriber.complained",
    "subscriber.opened_email",
    "subscriber.received_email",
    "subscriber.unsubscribed_all",
    "subscriber.unsubscribed_from_campaign",
]
"""The seven email events: what the warehouse maps out of the box."""
SUBSCRIBED = sorted(registry.BY_DRIP_EVENT)
"""What create asks for: every Drip event of the registry (the 22 opt-in ones too, spec §9)."""


@pytest.fixture
def drip() -> Iterator[FakeDrip]:
    with FakeDrip() as fake:
        yield fake


def _settings(drip: FakeDrip) -> DripSettings:
    return DripSettings(token=TOKEN, api_url=drip.url)


def test_the_warehouse_maps_the_seven_email_events() -> None:
    assert list(mapped_events()) == MAPPED


def test_create_asks_for_every_drip_event_so_an_opt_in_later_has_its_history() -> None:
    assert list(webhook_events()) == SUBSCRIBED
    assert len(SUBSCRIBED) == 29 and set(MAPPED) <= set(SUBSCRIBED)


def test_create_subscribes_to_every_drip_event_and_received_email(drip: FakeDrip) -> None:
    done = create_webhook(_settings(drip), url=URL)

    (post,) = drip.calls("POST", f"/v2/{ACCOUNT}/webhooks")
    assert post.body == {
        "webhooks": [{"post_url": URL, "events": SUBSCRIBED, "include_received_email": True}]
    }
    assert post.headers["Content-Type"] == "application/json"
    assert done.created
    assert done.lines() == [
        f"Registered webhook 77777 in Drip account {ACCOUNT}:",
        "  URL             https://drip.example.com/webhooks/drip/***",
        "  events          " + ", ".join(SUBSCRIBED),
        "  received email  on",
    ]


def test_create_again_with_the_same_url_changes_nothing(drip: FakeDrip) -> None:
    create_webhook(_settings(drip), url=URL)
    again = create_webhook(_settings(drip), url=URL)
    assert not again.created
    assert again.lines()[0] == f"Already registered in Drip account {ACCOUNT} (nothing changed):"
    assert len(drip.calls("POST", "/v2")) == 1
    assert list(drip.webhooks) == ["77777"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            f"http://drip.example.com/webhooks/drip/{RECEIVER_TOKEN}",
            "http://drip.example.com/webhooks/drip/*** is not https: Drip would send subscriber "
            "data in clear text; put serve behind TLS, or pass --allow-http for a test setup",
        ),
        (
            f"https://drip.example.com/hooks/{RECEIVER_TOKEN}",
            "https://drip.example.com/hooks/*** is not a serve webhook URL: its path must be "
            "/webhooks/drip/<token> with the token serve uses ($DRIP_LOADER_WEBHOOK_TOKEN, "
            "16 to 256 letters, digits, . _ ~ -)",
        ),
        (
            "https://drip.example.com/webhooks/drip/short",
            "https://drip.example.com/webhooks/drip/*** is not a serve webhook URL: its path "
            "must be /webhooks/drip/<token> with the token serve uses "
            "($DRIP_LOADER_WEBHOOK_TOKEN, 16 to 256 letters, digits, . _ ~ -)",
        ),
        (
            "example.com/webhooks/drip/x",
            "example.com/webhooks/drip/*** is not a URL: give the receiver's public "
            "address, e.g. https://drip.example.com/webhooks/drip/$DRIP_LOADER_WEBHOOK_TOKEN",
        ),
    ],
)
def test_create_refuses_a_url_serve_would_not_answer(
    drip: FakeDrip, url: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        create_webhook(_settings(drip), url=url)
    assert str(caught.value) == message
    assert drip.requests == []  # checked before asking Drip anything


def test_http_is_accepted_when_asked() -> None:
    url = f"http://127.0.0.1:8000/webhooks/drip/{RECEIVER_TOKEN}"
    assert check_receiver_url(url, allow_http=True) == url


def test_list_masks_tokens_and_warns_about_missing_events(drip: FakeDrip) -> None:
    drip.add_webhook(post_url=URL, events=MAPPED, include_received_email=True, version=2)
    drip.add_webhook(
        post_url=f"{URL}?ap_token=secret-query-value",
        events=["subscriber.opened_email", "subscriber.received_email"],
        include_received_email=False,
    )
    listed = list_webhooks(_settings(drip))
    assert [(w.id, w.version) for w in listed.webhooks] == [("77777", "2"), ("77778", "1")]
    assert listed.lines() == [
        f"Webhooks of Drip account {ACCOUNT}:",
        "  77777  https://drip.example.com/webhooks/drip/***  received email on  events: "
        + ", ".join(MAPPED),
        "  77778  https://drip.example.com/webhooks/drip/***?ap_token=***  received email off  "
        "events: subscriber.opened_email, subscriber.received_email",
        "Warning: webhook 77778 misses subscriber.received_email, subscriber.bounced, "
        "subscriber.clicked_email, subscriber.complained, subscriber.unsubscribed_all, "
        "subscriber.unsubscribed_from_campaign (without received email the warehouse gets no "
        "Email Delivered rows and open rates are wrong); replace it: drip-loader drip webhook "
        "delete 77778, then drip webhook create",
    ]


def test_delete_deletes_and_a_second_delete_is_already_done(drip: FakeDrip) -> None:
    drip.add_webhook(post_url=URL)
    assert delete_webhook(_settings(drip), webhook_id="77777").lines() == [
        f"Deleted webhook 77777 of Drip account {ACCOUNT}."
    ]
    assert drip.webhooks == {}
    assert delete_webhook(_settings(drip), webhook_id="77777").lines() == [
        f"Webhook 77777 is not in Drip account {ACCOUNT} (already deleted): nothing to do."
    ]


def test_mask_url_hides_secret_looking_segments() -> None:
    assert mask_url("https://hooks.example/catch/0123456789abcdefXYZ/") == (
        "https://hooks.example/catch/***/"
    )
    assert mask_url("https://user:pw@h.example:8443/webhooks/drip/abc") == (
        "https://h.example:8443/webhooks/drip/***"
    )


# ---- the commands, as a user runs them ----

DRIP_COMMANDS = [
    ["drip"],
    ["drip", "webhook"],
    ["drip", "webhook", "create"],
    ["drip", "webhook", "list"],
    ["drip", "webhook", "delete"],
    ["drip", "sync"],
]


def _env(drip: FakeDrip, **extra: str) -> dict[str, str]:
    return {
        "DRIP_LOADER_DRIP_API_TOKEN": TOKEN,
        "DRIP_LOADER_DRIP_API_URL": drip.url,
        "DRIP_LOADER_DRIP_ACCOUNT_ID": "",
        **extra,
    }


@pytest.mark.parametrize("command", DRIP_COMMANDS, ids=" ".join)
def test_every_drip_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"DRIP_LOADER_DRIP_API_TOKEN": ""})
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_drip_help_imports_nothing_heavy() -> None:
    # httpx and the drip modules load only when a drip command runs; whatever importing
    # loader.cli itself loads is the business of the --help test over every command.
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from loader.cli.app import app\n"
        "before = set(sys.modules)\n"
        "for cmd in (['drip', 'sync'], ['drip', 'webhook', 'create']):\n"
        "    assert CliRunner().invoke(app, [*cmd, '--help']).exit_code == 0\n"
        "drip = ('httpx', 'loader.drip_api.client', 'loader.drip_api.sync', 'loader.drip_api.webhooks')\n"
        "heavy = ('sqlalchemy', 'psycopg2', 'pandas', 'alembic', *drip)\n"
        "print(sorted(m for m in set(sys.modules) - before if m.startswith(heavy)))\n"
        "print(sorted(m for m in sys.modules if m.startswith(drip)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["[]", "[]"]


def test_webhook_commands_end_to_end_never_print_the_token(drip: FakeDrip) -> None:
    runner = CliRunner()
    env = _env(drip)
    outputs = []
    for args in (
        ["drip", "webhook", "create", "--url", URL],
        ["drip", "webhook", "list"],
        ["--debug", "drip", "webhook", "list"],
        ["drip", "webhook", "delete", "77777"],
        ["drip", "webhook", "delete", "77777"],
    ):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert outputs[0].startswith(f"Registered webhook 77777 in Drip account {ACCOUNT}:")
    assert outputs[1].startswith(f"Webhooks of Drip account {ACCOUNT}:\n  77777  ")
    assert outputs[4].endswith("(already deleted): nothing to do.\n")
    for output in outputs:
        assert TOKEN not in output
        assert RECEIVER_TOKEN not in output


@pytest.mark.parametrize("debug", [[], ["--debug"]], ids=["plain", "debug"])
def test_a_wrong_token_is_one_line_and_exit_1_and_never_printed(
    drip: FakeDrip, debug: list[str]
) -> None:
    wrong = "wr0ng-t0ken-that-must-never-show"
    done = subprocess.run(
        [sys.executable, "-m", "loader", *debug, "drip", "webhook", "list"],
        capture_output=True,
        text=True,
        env={**_minimal_env(), **_env(drip, DRIP_LOADER_DRIP_API_TOKEN=wrong)},
        timeout=60,
    )
    assert done.returncode == 1
    assert wrong not in done.stdout + done.stderr
    if not debug:
        assert done.stderr == (
            "Error: Drip refused the API token (401) on GET /accounts: check --drip-api-token / "
            "DRIP_LOADER_DRIP_API_TOKEN (Drip: Settings → User Settings → API Token)\n"
        )


def _minimal_env() -> dict[str, str]:
    import os

    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DRIP_LOADER_") and k != "DATABASE_URL"
    }


def test_several_accounts_are_listed_and_one_is_asked_for(drip: FakeDrip) -> None:
    drip.accounts.append({"id": "1234567", "name": "Acme EU"})
    result = CliRunner().invoke(app, ["drip", "webhook", "list"], env=_env(drip))
    assert result.exit_code == 1
    assert "reaches 2 accounts: 9999999 (Acme), 1234567 (Acme EU); choose one with " in (
        result.output
    )
    result = CliRunner().invoke(
        app, ["drip", "webhook", "list", "--drip-account-id", "1234567"], env=_env(drip)
    )
    assert result.exit_code == 0, result.output


def test_sync_and_status_through_the_cli(drip: FakeDrip, db_url: str) -> None:
    env = {**_env(drip), "DRIP_LOADER_DATABASE_URL": db_url}
    done = subprocess.run(
        [sys.executable, "-m", "loader", "--debug", "drip", "sync", "--max-wait", "10"],
        capture_output=True,
        text=True,
        env={**_minimal_env(), **env},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"Drip sync of account {ACCOUNT} in ")
    assert lines[1:] == [
        "  table                    in Drip       new   deleted",
        "  drip_subscribers           2,100     2,100         0",
        "  drip_campaigns                 3         3         0",
        "  drip_broadcasts              250       250         0",
        "  drip_workflows                 2         2         0",
        "  drip_tags                      3         3         0",
        "  drip_custom_fields             3         3         0",
    ]
    status = CliRunner().invoke(app, ["status"], env={"DRIP_LOADER_DATABASE_URL": db_url})
    assert status.exit_code == 0, status.output
    (line,) = [s for s in status.output.splitlines() if s.startswith("Drip sync:")]
    assert line.endswith(
        " completed; drip_subscribers 2,100, drip_campaigns 3, drip_broadcasts 250, "
        "drip_workflows 2, drip_tags 3, drip_custom_fields 3"
    )


def test_a_webhook_without_an_event_list_misses_only_received_email() -> None:
    # Drip: no events given means "all events except subscriber.received_email"
    from loader.drip_api.webhooks import Webhook

    hook = Webhook(id="1", post_url=URL, events=(), include_received_email=False)
    assert hook.missing() == ("subscriber.received_email",)
    assert Webhook(id="2", post_url=URL, events=(), include_received_email=True).missing() == ()
