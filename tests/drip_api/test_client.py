"""The Drip API client against a local fake Drip (contract drip-api.md §1, §2, §8, §10)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from loader import __version__
from loader.config import DripSettings
from loader.drip_api.client import MAX_ATTEMPTS, DripClient, resolve_account
from loader.errors import ConfigError, DripApiError, DripGaveUp, DripNotFound
from tests.support.fake_drip import ACCOUNT, TOKEN, FakeClock, FakeDrip, Fault


@pytest.fixture
def drip() -> Iterator[FakeDrip]:
    with FakeDrip() as fake:
        yield fake


def _client(
    drip: FakeDrip, clock: FakeClock, *, max_wait: float = 3600, timeout: float = 5.0, **kw: str
) -> tuple[DripClient, list[str]]:
    said: list[str] = []
    settings = DripSettings(token=kw.get("token", TOKEN), api_url=drip.url, timeout=timeout)
    return DripClient(settings, max_wait=max_wait, announce=said.append, sleep=clock), said


def test_every_request_names_the_app_and_sends_the_token_as_basic_user(drip: FakeDrip) -> None:
    client, _ = _client(drip, FakeClock())
    with client:
        client.get("user")
    (request,) = drip.requests
    assert request.headers["User-Agent"].startswith(f"drip-loader/{__version__} ")
    expected = "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode()
    assert request.headers["Authorization"] == expected


def test_pages_follow_total_pages_at_the_largest_page_size(drip: FakeDrip) -> None:
    client, _ = _client(drip, FakeClock())
    seen: list[tuple[int, int]] = []
    with client:
        pages = list(
            client.pages(
                f"{ACCOUNT}/subscribers",
                "subscribers",
                per_page=1000,
                params={"status": "all"},
                on_page=lambda page, total: seen.append((page, total)),
            )
        )
    assert [len(p) for p in pages] == [1000, 1000, 100]
    assert seen == [(1, 3), (2, 3), (3, 3)]
    queries = [r.query for r in drip.requests]
    assert queries == [{"status": "all", "page": str(n), "per_page": "1000"} for n in (1, 2, 3)]


def test_an_endpoint_without_meta_is_one_page(drip: FakeDrip) -> None:
    client, _ = _client(drip, FakeClock())
    with client:
        assert list(client.pages(f"{ACCOUNT}/tags", "tags")) == [["Customer", "SEO", "VIP"]]
    assert len(drip.requests) == 1


def test_a_429_waits_retry_after_when_given_else_60_s_then_doubling(drip: FakeDrip) -> None:
    drip.plan("tags", Fault(429), Fault(429), Fault(429, retry_after="7"), Fault(429))
    clock = FakeClock()
    client, said = _client(drip, clock)
    with client:
        assert client.get(f"{ACCOUNT}/tags")["tags"] == ["Customer", "SEO", "VIP"]
    assert clock.sleeps == [60, 120, 7, 240]
    assert said == [
        f"Drip rate limit reached on GET /{ACCOUNT}/tags: waiting 60 s (no Retry-After)",
        f"Drip rate limit reached on GET /{ACCOUNT}/tags: waiting 120 s (no Retry-After)",
        f"Drip rate limit reached on GET /{ACCOUNT}/tags: waiting 7 s (Retry-After)",
        f"Drip rate limit reached on GET /{ACCOUNT}/tags: waiting 240 s (no Retry-After)",
    ]
    assert client.waits.rate_limited == 4
    assert client.rate_remaining == 3600 - 5


def test_waiting_past_max_wait_gives_up_before_sleeping(drip: FakeDrip) -> None:
    drip.plan("tags", Fault(429, retry_after="3000"), Fault(429, retry_after="700"))
    clock = FakeClock()
    client, _ = _client(drip, clock, max_wait=3600)
    with client, pytest.raises(DripGaveUp) as caught:
        client.get(f"{ACCOUNT}/tags")
    assert clock.sleeps == [3000]
    assert str(caught.value) == (
        f"gave up on Drip API GET /{ACCOUNT}/tags: waiting 700 s more would pass --max-wait "
        "3600 s (waited 3000 s already); tables not finished are left as they were: run again "
        "later or raise --max-wait"
    )


def test_5xx_answers_are_retried_with_capped_backoff(drip: FakeDrip) -> None:
    drip.plan("tags", Fault(500), Fault(502), Fault(503), Fault(504))
    clock = FakeClock()
    client, said = _client(drip, clock)
    with client:
        assert client.get(f"{ACCOUNT}/tags")["tags"]
    assert clock.sleeps == [1, 2, 4, 8]
    assert said[1] == f"Drip API GET /{ACCOUNT}/tags answered 502: retrying in 2 s"


def test_5xx_without_end_gives_up_after_max_attempts(drip: FakeDrip) -> None:
    drip.plan("tags", *[Fault(503)] * 10)
    clock = FakeClock()
    client, _ = _client(drip, clock)
    with client, pytest.raises(DripApiError, match="answered 503 5 times in a row"):
        client.get(f"{ACCOUNT}/tags")
    assert len(drip.requests) == MAX_ATTEMPTS
    assert clock.sleeps == [1, 2, 4, 8]


def test_a_response_slower_than_the_timeout_is_retried(drip: FakeDrip) -> None:
    drip.plan("tags", Fault(200, delay=0.6))
    clock = FakeClock()
    client, said = _client(drip, clock, timeout=0.2)
    with client:
        assert client.get(f"{ACCOUNT}/tags")["tags"]
    assert said == [f"Drip API GET /{ACCOUNT}/tags timed out: retrying in 1 s"]


def test_a_wrong_token_fails_at_once_with_what_to_do(drip: FakeDrip) -> None:
    client, _ = _client(drip, FakeClock(), token="wrong-token-0123456789")
    with client, pytest.raises(DripApiError) as caught:
        client.get("accounts")
    assert str(caught.value) == (
        "Drip refused the API token (401) on GET /accounts: check --drip-api-token / "
        "DRIP_LOADER_DRIP_API_TOKEN (Drip: Settings → User Settings → API Token)"
    )
    assert caught.value.status == 401
    assert len(drip.requests) == 1


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        (
            f"{ACCOUNT}/webhooks/404404",
            DripNotFound,
            f"Drip API GET /{ACCOUNT}/webhooks/404404: not found (404: The resource you "
            "requested was not found)",
        ),
        (
            "7654321/tags",
            DripApiError,
            "Drip API GET /7654321/tags: not allowed (403: You are not authorized to access "
            "this resource); check that the token's user belongs to the account "
            "(--drip-account-id / DRIP_LOADER_DRIP_ACCOUNT_ID)",
        ),
    ],
)
def test_other_4xx_are_never_retried(
    drip: FakeDrip, path: str, error: type[Exception], message: str
) -> None:
    clock = FakeClock()
    client, _ = _client(drip, clock)
    with client, pytest.raises(error) as caught:
        client.get(path)
    assert str(caught.value) == message
    assert (len(drip.requests), clock.sleeps) == (1, [])


def test_a_422_names_the_attribute_and_never_echoes_the_token(drip: FakeDrip) -> None:
    body = (
        b'{"errors":[{"code":"url_error","attribute":"post_url","message":"'
        + TOKEN.encode()
        + b' is not a valid URL"}]}'
    )
    drip.plan("webhooks", Fault(422, body=body))
    client, _ = _client(drip, FakeClock())
    with client, pytest.raises(DripApiError) as caught:
        client.request("POST", f"{ACCOUNT}/webhooks", body={"webhooks": [{}]})
    assert str(caught.value) == (
        f"Drip API POST /{ACCOUNT}/webhooks refused the request "
        "(422: post_url *** is not a valid URL)"
    )


def test_the_per_page_maximum_is_respected(drip: FakeDrip) -> None:
    drip.strict_per_page = True
    client, _ = _client(drip, FakeClock())
    with client:
        hidden = list(client.pages(f"{ACCOUNT}/broadcasts", "broadcasts", per_page=100))
        assert [len(p) for p in hidden] == [100, 100]  # the 50 deleted ones are hidden
        every = client.pages(
            f"{ACCOUNT}/broadcasts", "broadcasts", per_page=100, params={"status": "all"}
        )
        assert [len(p) for p in every] == [100, 100, 50]
        with pytest.raises(DripApiError, match=r"422: per_page must be at most 100"):
            list(client.pages(f"{ACCOUNT}/broadcasts", "broadcasts", per_page=101))


def test_the_account_is_the_only_one_the_token_reaches(drip: FakeDrip) -> None:
    client, _ = _client(drip, FakeClock())
    with client:
        assert resolve_account(client, None) == ACCOUNT
        assert resolve_account(client, "5555555") == "5555555"
        drip.accounts.append({"id": "1234567", "name": "Acme EU"})
        with pytest.raises(ConfigError) as caught:
            resolve_account(client, None)
    assert str(caught.value) == (
        "the Drip API token reaches 2 accounts: 9999999 (Acme), 1234567 (Acme EU); choose one "
        "with --drip-account-id or DRIP_LOADER_DRIP_ACCOUNT_ID"
    )


def test_settings_need_a_token_and_never_show_it() -> None:
    with pytest.raises(ConfigError, match="no Drip API token: set DRIP_LOADER_DRIP_API_TOKEN"):
        DripSettings.from_env({})
    settings = DripSettings.from_env(
        {"DRIP_LOADER_DRIP_API_TOKEN": TOKEN, "DRIP_LOADER_DRIP_API_URL": "http://x/v2/"}
    )
    assert (settings.api_url, settings.account_id) == ("http://x/v2", None)
    assert TOKEN not in repr(settings)
    with pytest.raises(ConfigError, match="invalid Drip account id 'acme'"):
        DripSettings(token=TOKEN, account_id="acme")


def test_a_closed_port_is_retried_then_reported() -> None:
    with FakeDrip() as gone:
        url = gone.url  # the port is closed once the fake has stopped
    clock = FakeClock()
    settings = DripSettings(token=TOKEN, api_url=url)
    with DripClient(settings, sleep=clock) as client, pytest.raises(DripApiError) as caught:
        client.get("accounts")
    assert str(caught.value) == (
        "Drip API GET /accounts failed (ConnectError) 5 times in a row; Drip may be down "
        "(https://status.drip.com): run the same command again later"
    )
    assert clock.sleeps == [1, 2, 4, 8]


def test_an_api_url_without_a_host_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"invalid Drip API URL 'https://'"):
        DripSettings(token=TOKEN, api_url="https://")
