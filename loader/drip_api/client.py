"""The client of Drip's REST API v2 (contract: ``shared/spec/drip-api.md``), on httpx.

* HTTP Basic with the API token as user and an empty password, a ``User-Agent`` naming
  drip-loader and its version, JSON bodies, GET filters in the query string.
* Pagination over ``meta.total_pages`` (endpoints without ``meta`` are one page).
* The rate limit (3,600 requests an hour): ``X-RateLimit-Remaining`` is kept for the report;
  a 429 waits ``Retry-After`` when Drip sends it, else 60 s, doubling on each further 429.
  5xx answers and timeouts are retried with capped backoff; any other 4xx fails at once.
* Every wait is announced, counted against ``max_wait`` (past it: :class:`DripGaveUp`), and
  slept through an injectable ``sleep`` so tests run on a fake clock.

The token is a secret: it lives in a field hidden from ``repr``, is never logged, and is
scrubbed from every message built from an answer of the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from .._version import __version__
from ..config import (
    DEFAULT_MAX_WAIT,
    DRIP_ACCOUNT_ENV,
    DRIP_API_TOKEN_ENV,
    DRIP_API_URL_ENV,
    DripSettings,
)
from ..errors import ConfigError, DripApiError, DripGaveUp, DripNotFound

USER_AGENT = f"drip-loader/{__version__} (https://github.com/drip-loader/drip-loader)"

RATE_LIMIT_FIRST_WAIT = 60.0
"""Seconds to wait after a 429 without ``Retry-After`` (doubled on each one that follows)."""
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 30.0
MAX_ATTEMPTS = 5
"""Tries of one request that meets 5xx answers or timeouts, before giving up."""


@dataclass
class Waits:
    """What the client waited for, over one run."""

    seconds: float = 0.0
    rate_limited: int = 0
    retried: int = 0


def _default_announce(line: str) -> None:
    pass


class DripClient:
    """One connection to Drip's API for one run; use as a context manager.

    Args:
        settings: token, account and base URL.
        max_wait: seconds of waiting (rate limit and backoff) allowed in this run.
        announce: told about every wait, as a line a person can read.
        sleep: how to wait (``time.sleep``; tests pass a fake clock).
        transport: an httpx transport, for tests that need one (default: the network).
    """

    def __init__(
        self,
        settings: DripSettings,
        *,
        max_wait: float = DEFAULT_MAX_WAIT,
        announce: Callable[[str], None] = _default_announce,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._token = settings.token
        self.max_wait = max_wait
        self.waits = Waits()
        self.rate_remaining: int | None = None
        """``X-RateLimit-Remaining`` of the last answer (requests left this hour)."""
        self.requests = 0
        self._announce = announce
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=settings.api_url + "/",
            auth=httpx.BasicAuth(settings.token, ""),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=settings.timeout,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"DripClient({self._client.base_url!s})"

    def __enter__(self) -> DripClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def scrub(self, text: str) -> str:
        """``text`` with the token replaced by ``***`` (for anything built from an answer)."""
        return text.replace(self._token, "***") if self._token else text

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
    ) -> httpx.Response:
        """Send one request (``path`` relative to the base URL), waiting and retrying as needed.

        Returns the first answer that is neither a 429, a 5xx nor a timeout, if it is a 2xx.

        Raises:
            DripNotFound: 404.
            DripApiError: another 4xx, or 5xx/timeouts ``MAX_ATTEMPTS`` times in a row.
            DripGaveUp: the next wait would pass ``max_wait``.
        """
        rate_wait = RATE_LIMIT_FIRST_WAIT
        backoff = BACKOFF_FIRST
        failures = 0
        what = f"{method} /{path}"
        while True:
            try:
                self.requests += 1
                response = self._client.request(method, path, params=params, json=body)
            except httpx.TimeoutException:
                failures += 1
                problem = "timed out"
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                failures += 1
                problem = f"failed ({type(exc).__name__})"
            except httpx.TransportError as exc:  # a proxy or protocol problem: no retry helps
                raise DripApiError(
                    f"Drip API {what} failed ({type(exc).__name__}: {self.scrub(str(exc))}); "
                    f"check --drip-api-url / {DRIP_API_URL_ENV}"
                ) from None
            else:
                self._note_rate_limit(response)
                if response.status_code == 429:
                    retry_after = _retry_after(response)
                    if retry_after is None:
                        wait, rate_wait = rate_wait, rate_wait * 2
                        why = "no Retry-After"
                    else:
                        wait, why = retry_after, "Retry-After"
                    self.waits.rate_limited += 1
                    self._wait(
                        wait, what, f"Drip rate limit reached on {what}: waiting {wait:g} s ({why})"
                    )
                    continue
                if response.status_code < 500:
                    return self._checked(response, what)
                failures += 1
                problem = f"answered {response.status_code}"
            if failures >= MAX_ATTEMPTS:
                raise DripApiError(
                    f"Drip API {what} {problem} {failures} times in a row; Drip may be down "
                    "(https://status.drip.com): run the same command again later",
                    status=None if problem.startswith(("timed", "failed")) else 500,
                )
            self.waits.retried += 1
            self._wait(backoff, what, f"Drip API {what} {problem}: retrying in {backoff:g} s")
            backoff = min(backoff * 2, BACKOFF_CAP)

    def get(self, path: str, **params: str | int) -> dict[str, Any]:
        """``GET path`` and its JSON object."""
        return _json_object(self.request("GET", path, params=params), f"GET /{path}")

    def post(self, path: str, body: Any) -> dict[str, Any]:
        """``POST path`` with a JSON ``body``, and the JSON object answered."""
        return _json_object(self.request("POST", path, body=body), f"POST /{path}")

    def pages(
        self,
        path: str,
        key: str,
        *,
        per_page: int | None = None,
        params: Mapping[str, str] | None = None,
        on_page: Callable[[int, int], None] | None = None,
    ) -> Iterator[list[Any]]:
        """Yield the ``key`` array of every page of ``GET path``, page 1 to ``meta.total_pages``.

        An answer without ``meta`` (accounts, webhooks, tags, custom fields) is one page.
        ``on_page(page, total_pages)`` is told after each page.
        """
        page = 1
        while True:
            query: dict[str, str | int] = {**(params or {}), "page": page}
            if per_page is not None:
                query["per_page"] = per_page
            body = self.get(path, **query)
            items = body.get(key)
            if not isinstance(items, list):
                raise DripApiError(
                    f"Drip API GET /{path} answered without a {key!r} list; "
                    "check --drip-api-url (it must end in /v2)"
                )
            meta = body.get("meta")
            total = meta.get("total_pages") if isinstance(meta, dict) else None
            total_pages = total if isinstance(total, int) else page
            if on_page is not None:
                on_page(page, max(total_pages, page))
            yield items
            if not items or page >= total_pages:
                return
            page += 1

    def _note_rate_limit(self, response: httpx.Response) -> None:
        remaining = response.headers.get("X-RateLimit-Remaining")
        if remaining is not None and remaining.strip().isdigit():
            self.rate_remaining = int(remaining)

    def _wait(self, seconds: float, what: str, line: str) -> None:
        if self.waits.seconds + seconds > self.max_wait:
            raise DripGaveUp(
                f"gave up on Drip API {what}: waiting {seconds:g} s more would pass --max-wait "
                f"{self.max_wait:g} s (waited {self.waits.seconds:g} s already); tables not "
                "finished are left as they were: run again later or raise --max-wait"
            )
        self._announce(line)
        self.waits.seconds += seconds
        self._sleep(seconds)

    def _checked(self, response: httpx.Response, what: str) -> httpx.Response:
        status = response.status_code
        if status < 400:
            return response
        detail = self.scrub(_error_detail(response))
        if status == 401:
            raise DripApiError(
                f"Drip refused the API token (401) on {what}: check --drip-api-token / "
                f"{DRIP_API_TOKEN_ENV} (Drip: Settings → User Settings → API Token)",
                status=status,
            )
        if status == 403:
            raise DripApiError(
                f"Drip API {what}: not allowed (403{detail}); check that the token's user "
                f"belongs to the account (--drip-account-id / {DRIP_ACCOUNT_ENV})",
                status=status,
            )
        if status == 404:
            raise DripNotFound(f"Drip API {what}: not found (404{detail})", status=status)
        raise DripApiError(f"Drip API {what} refused the request ({status}{detail})", status=status)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None  # absent, or an HTTP date (never seen from Drip)
    return seconds if seconds >= 0 else None


def _error_detail(response: httpx.Response) -> str:
    """``": message; message"`` from an error body in any of Drip's shapes, or ``""``."""
    try:
        body = response.json()
    except ValueError:
        return ""
    items: list[Any] = []
    if isinstance(body, dict):
        errors = body.get("errors")
        items = errors if isinstance(errors, list) else [body]
    messages = []
    for item in items:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message") or item.get("code") or "").strip()
        attribute = item.get("attribute")
        if message:
            messages.append(f"{attribute} {message}" if attribute else message)
    return (": " + "; ".join(messages)) if messages else ""


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise DripApiError(
            f"Drip API {what} answered {response.status_code} without a JSON object; "
            "check --drip-api-url (it must end in /v2)",
            status=response.status_code,
        )
    return body


def resolve_account(client: DripClient, account_id: str | None) -> str:
    """``account_id``, or the only account the token reaches (``GET /accounts``).

    Raises:
        ConfigError: the token reaches no account, or several (they are listed).
    """
    if account_id:
        return account_id
    accounts = client.get("accounts").get("accounts") or []
    found = [(str(a.get("id")), str(a.get("name") or "")) for a in accounts if isinstance(a, dict)]
    if len(found) == 1:
        return found[0][0]
    if not found:
        raise ConfigError("the Drip API token reaches no account: use a token of an account user")
    listed = ", ".join(f"{id_} ({name})" if name else id_ for id_, name in found)
    raise ConfigError(
        f"the Drip API token reaches {len(found)} accounts: {listed}; choose one with "
        f"--drip-account-id or {DRIP_ACCOUNT_ENV}"
    )
