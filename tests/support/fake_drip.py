"""A real local HTTP server imitating Drip's REST API v2, for tests (contract ``drip-api.md``).

It follows the contract's checklist (§10): Basic (``token:`` or bare token) and Bearer auth,
a bad token answered 401 with an empty body; every list wrapped in a plural-keyed array with
top-level ``links``; ``meta{page,count,total_pages,total_count}`` pagination with each
endpoint's ``per_page`` maximum (clamped, or 422 when ``strict_per_page``); a page past the
end is ``[]``; ``/subscribers`` without ``status`` lists only active ones and
``/broadcasts`` hides deleted ones unless ``status=deleted|all``; ``X-RateLimit-*`` headers
on every answer; ids as strings; tags and custom fields as bare strings; the webhook
lifecycle (201 with a one-element array, 204 on delete, 404 afterwards, 422 with
``attribute``); 403 for another account.

Faults are planned for the next requests whose path starts with a prefix::

    with FakeDrip() as drip:
        drip.plan("subscribers", Fault(429), Fault(429, retry_after="7"), Fault(503))
        drip.plan("campaigns", Fault(200, delay=1.0))     # slower than the client timeout

Every request is recorded (method, path, query, headers, JSON body).
"""

from __future__ import annotations

import base64
import copy
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from tests.support.local_http import LocalHTTPServer

TOKEN = "drip-test-token-5f2b9c1e7a"
ACCOUNT = "9999999"
OTHER_ACCOUNT = "1234567"
PER_PAGE_MAX = {"subscribers": 1000, "broadcasts": 100, "campaigns": 100, "workflows": 100}
RATE_LIMIT = 3600

RATE_LIMITED = {
    "message": "API rate limit exceeded. Please try again in an hour.",
    "documentation": "https://www.getdrip.com/docs/rest-api#rate-limting",
}


@dataclass
class Fault:
    """An answer to give instead of the normal one (``status`` 200 + ``delay``: just slow)."""

    status: int
    body: bytes | None = None
    retry_after: str | None = None
    delay: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None
    status: int = 0


def _links(account: str) -> dict[str, str]:
    return {"account": account}


def full_subscriber() -> dict[str, Any]:
    """A subscriber with every documented key (and one undocumented the client ignores)."""
    return {
        "id": "z5qk8w2m3n",
        "status": "active",
        "initial_status": "unsubscribed",
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "address1": "12 St James's Square",
        "address2": None,
        "city": "London",
        "state": "",
        "zip": "SW1Y 4JH",
        "country": "GB",
        "phone": "+44 20 7946 0000",
        "sms_number": "+447700900000",
        "sms_consent": True,
        "eu_consent": "granted",
        "time_zone": "Europe/London",
        "utc_offset": 60,
        "visitor_uuid": "c5a1e5c2d2b34f8e9b1f3a2d4c6e8f00",
        "custom_fields": {"plan": "pro", "seats": 3},
        "tags": ["Customer", "VIP"],
        "ip_address": "203.0.113.9",
        "user_agent": "Mozilla/5.0",
        "original_referrer": "https://news.example/",
        "landing_url": "https://acme.example/pricing",
        "prospect": False,
        "lead_score": 42,
        "base_lead_score": 30,
        "lifetime_value": 129900,
        "created_at": "2024-02-29T08:15:00Z",
        "href": f"https://api.getdrip.com/v2/{ACCOUNT}/subscribers/z5qk8w2m3n",
        "user_id": "u-1001",
        "links": _links(ACCOUNT),
        "undocumented_future_key": {"x": 1},
    }


def minimal_subscriber() -> dict[str, Any]:
    """A subscriber as a 2019 live fetch returned it: no name or address keys at all."""
    return {
        "id": "m1n1m4l",
        "status": "unsubscribed",
        "email": "bare@example.com",
        "custom_fields": {},
        "tags": [],
        "created_at": "2019-05-01T10:00:00Z",
        "href": f"https://api.getdrip.com/v2/{ACCOUNT}/subscribers/m1n1m4l",
        "links": _links(ACCOUNT),
    }


def bulk_subscriber(i: int) -> dict[str, Any]:
    status = ("active", "unsubscribed", "undeliverable")[i % 3]
    return {
        "id": f"s{i:05d}x",
        "status": status,
        "email": f"person{i}@example.com",
        "tags": [],
        "custom_fields": {},
        "lifetime_value": i,
        "created_at": "2025-01-01T00:00:00Z",
        "links": _links(ACCOUNT),
    }


def campaign(id_: str, name: str, status: str) -> dict[str, Any]:
    return {
        "id": id_,
        "status": status,
        "name": name,
        "from_name": "Acme",
        "from_email": "hello@acme.example",
        "postal_address": "1 Main St",
        "minutes_from_midnight": 540,
        "localize_sending_time": True,
        "days_of_the_week_mask": "0111110",
        "start_immediately": False,
        "double_optin": True,
        "send_to_confirmation_page": False,
        "use_custom_confirmation_page": False,
        "confirmation_url": None,
        "notify_subscribe_email": "",
        "notify_unsubscribe_email": "",
        "bcc": None,
        "email_count": 5,
        "active_subscriber_count": 120,
        "unsubscribed_subscriber_count": 7,
        "created_at": "2025-03-01T12:00:00Z",
        "href": f"https://api.getdrip.com/v2/{ACCOUNT}/campaigns/{id_}",
        "links": {"account": ACCOUNT, "forms": []},
    }


def broadcast(i: int) -> dict[str, Any]:
    status = ("sent", "draft", "scheduled", "deleted", "canceled")[i % 5]
    return {
        "id": f"{500000 + i}",
        "status": status,
        "name": f"Newsletter {i}",
        "subject": f"News #{i}",
        "from_name": "Acme",
        "from_email": "news@acme.example",
        "postal_address": "1 Main St",
        "localize_sending_time": False,
        "send_at": None if status == "draft" else "2025-06-01T09:00:00Z",
        "bcc": None,
        "html_body": "<p>Hi</p>",
        "text_body": "Hi",
        "preview_url": f"https://www.getdrip.com/preview/{i}",
        "created_at": "2025-05-20T10:00:00Z",
        "href": f"https://api.getdrip.com/v2/{ACCOUNT}/broadcasts/{500000 + i}",
        "links": _links(ACCOUNT),
    }


def workflow(id_: str, name: str, status: str) -> dict[str, Any]:
    return {
        "id": id_,
        "href": f"https://api.getdrip.com/v2/{ACCOUNT}/workflows/{id_}",
        "name": name,
        "status": status,
        "created_at": "2025-04-01T00:00:00Z",
        "links": _links(ACCOUNT),
    }


def default_data(subscribers: int = 2100, broadcasts: int = 250) -> dict[str, list[Any]]:
    """3 pages of subscribers (per_page 1000) and of broadcasts (per_page 100)."""
    return {
        "subscribers": [
            full_subscriber(),
            minimal_subscriber(),
            *(bulk_subscriber(i) for i in range(subscribers - 2)),
        ],
        "campaigns": [
            campaign("11111", "Onboarding", "active"),
            campaign("22222", "Win-back", "paused"),
            campaign("33333", "Draft series", "draft"),
        ],
        "broadcasts": [broadcast(i) for i in range(broadcasts)],
        "workflows": [
            workflow("70001", "Welcome", "active"),
            workflow("70002", "Cart abandon", "draft"),
        ],
        "tags": ["Customer", "SEO", "VIP"],
        "custom_field_identifiers": ["first_name", "last_name", "plan"],
    }


@dataclass
class FakeDrip:
    """The server; use as a context manager (starts and stops the serving thread)."""

    token: str = TOKEN
    accounts: list[dict[str, Any]] = field(
        default_factory=lambda: [{"id": ACCOUNT, "name": "Acme"}]
    )
    data: dict[str, list[Any]] = field(default_factory=default_data)
    strict_per_page: bool = False
    """Answer 422 to a per_page above the endpoint's maximum (else clamp it)."""
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: list[tuple[str, deque[Fault]]] = []
        self._inserts: dict[tuple[str, int], dict[str, Any]] = {}
        self._remaining = RATE_LIMIT
        self.delaying = threading.Event()
        """Set when a planned slow answer starts waiting (a test can act meanwhile)."""
        self._next_webhook = 77777
        self._http = LocalHTTPServer(self._handler())

    @property
    def url(self) -> str:
        """The base URL including /v2 (what --drip-api-url takes)."""
        return f"{self._http.origin}/v2"

    def __enter__(self) -> FakeDrip:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()

    def plan(self, resource: str, *faults: Fault) -> None:
        """Answer the next requests to ``/v2/<account>/<resource>...`` with ``faults``."""
        with self._lock:
            self._plans.append((resource, deque(faults)))

    def insert_while_paging(self, resource: str, page: int, record: dict[str, Any]) -> None:
        """Insert ``record`` first in the list right after serving ``page``: the next page then
        repeats the last record of this one (what a live account does while it is read)."""
        self._inserts[(resource, page)] = record

    def add_webhook(self, **fields: Any) -> dict[str, Any]:
        with self._lock:
            return self._new_webhook(fields)

    def calls(self, method: str, prefix: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    def _new_webhook(self, fields: dict[str, Any]) -> dict[str, Any]:
        id_ = str(self._next_webhook)
        self._next_webhook += 1
        hook = {
            "id": id_,
            "href": f"https://api.getdrip.com/v2/{ACCOUNT}/webhooks/{id_}",
            "post_url": fields["post_url"],
            "version": fields.get("version", "1"),
            "include_received_email": fields.get("include_received_email", False),
            "events": fields.get("events") or [],
            "created_at": "2026-12-01T10:00:00Z",
            "links": _links(ACCOUNT),
        }
        self.webhooks[id_] = hook
        return hook

    def _fault(self, rest: str) -> Fault | None:
        for prefix, faults in self._plans:
            if rest.startswith(prefix) and faults:
                return faults.popleft()
        return None

    def _authorized(self, header: str) -> bool:
        basic = {base64.b64encode(v.encode()).decode() for v in (f"{self.token}:", self.token)}
        kind, _, value = header.partition(" ")
        return (kind == "Basic" and value in basic) or (kind == "Bearer" and value == self.token)

    def _list(self, resource: str, query: dict[str, str]) -> tuple[int, Any]:
        items = self.data.get(resource, [])
        if resource in ("tags", "custom_field_identifiers"):
            return 200, {resource: list(items)}
        status = query.get("status")
        if resource == "subscribers" and status != "all":
            items = [i for i in items if i["status"] == (status or "active")]
        elif resource == "broadcasts" and status not in ("all", "deleted"):
            items = [i for i in items if i["status"] != "deleted" and status in (None, i["status"])]
        elif resource == "broadcasts" and status == "deleted":
            items = [i for i in items if i["status"] == "deleted"]
        elif status not in (None, "all"):
            items = [i for i in items if i["status"] == status]
        maximum = PER_PAGE_MAX[resource]
        per_page = int(query.get("per_page", 100))
        if per_page > maximum and self.strict_per_page:
            return 422, {
                "errors": [
                    {
                        "code": "range_error",
                        "attribute": "per_page",
                        "message": f"must be at most {maximum}",
                    }
                ]
            }
        per_page = min(per_page, maximum)
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * per_page : page * per_page]
        total_pages = max(1, -(-len(items) // per_page))
        inserted = self._inserts.pop((resource, page), None)
        if inserted is not None:
            self.data[resource].insert(0, inserted)
        return 200, {
            "links": {f"{resource}.account": "https://api.getdrip.com/v2/accounts/{account}"},
            resource: copy.deepcopy(chunk),
            "meta": {
                "page": page,
                "count": len(chunk),
                "total_pages": total_pages,
                "total_count": len(items),
            },
        }

    def _webhooks(self, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
        if len(parts) == 1 and method == "GET":
            return 200, {"links": {}, "webhooks": list(self.webhooks.values())}
        if len(parts) == 1 and method == "POST":
            wrapped = body.get("webhooks") if isinstance(body, dict) else None
            new = wrapped[0] if isinstance(wrapped, list) and wrapped else {}
            url = new.get("post_url")
            if not url:
                return 422, _invalid("post_url", "presence_error", "Post url is required")
            if not str(url).startswith(("http://", "https://")):
                return 422, _invalid("post_url", "url_error", "Post url must be a valid URL")
            return 201, {"links": {}, "webhooks": [self._new_webhook(new)]}
        hook = self.webhooks.get(parts[1]) if len(parts) == 2 else None
        if hook is None:
            return 404, _not_found()
        if method == "DELETE":
            del self.webhooks[parts[1]]
            return 204, None
        return 200, {"links": {}, "webhooks": [hook]}

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if parts[:1] != ["v2"]:
            return 404, _not_found()
        parts = parts[1:]
        if parts == ["accounts"]:
            return 200, {"links": {}, "accounts": copy.deepcopy(self.accounts)}
        if parts == ["user"]:
            return 200, {"users": [{"email": "owner@acme.example", "name": "Owner"}]}
        if not parts:
            return 404, _not_found()
        if parts[0] not in {a["id"] for a in self.accounts}:
            return 403, {
                "errors": [
                    {
                        "code": "authorization_error",
                        "message": "You are not authorized to access this resource",
                    }
                ]
            }
        rest = parts[1:]
        if rest[:1] == ["webhooks"]:
            return self._webhooks(method, rest, body)
        if len(rest) == 1 and method == "GET" and rest[0] in self.data:
            return self._list(rest[0], query)
        return 404, _not_found()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                if body:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def _serve(self) -> None:
                split = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(split.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = orjson.loads(raw) if raw else None
                record = Recorded(self.command, split.path, query, dict(self.headers), body)
                with fake._lock:
                    fake.requests.append(record)
                    fake._remaining = max(0, fake._remaining - 1)
                    headers = {
                        "X-RateLimit-Limit": str(RATE_LIMIT),
                        "X-RateLimit-Remaining": str(fake._remaining),
                    }
                    fault = None
                    if not fake._authorized(self.headers.get("Authorization", "")):
                        status, answer = 401, b""
                    else:
                        segments = split.path.split("/")
                        fault = fake._fault("/".join(segments[3:]))
                        if fault is None or fault.status == 200:
                            status, payload = fake._route(self.command, split.path, query, body)
                            answer = b"" if payload is None else orjson.dumps(payload)
                        else:
                            status, answer = fault.status, _fault_body(fault)
                            if fault.retry_after is not None:
                                headers["Retry-After"] = fault.retry_after
                    record.status = status
                if fault is not None and fault.delay:
                    fake.delaying.set()
                    time.sleep(fault.delay)
                try:
                    self._answer(status, answer, headers)
                except OSError:
                    pass  # the client timed out and closed the connection

            do_GET = do_POST = do_DELETE = _serve

        return Handler


def _fault_body(fault: Fault) -> bytes:
    if fault.body is not None:
        return fault.body
    if fault.status == 429:
        return orjson.dumps(RATE_LIMITED)
    if fault.status == 504:
        return b'{"message":"Endpoint request timed out"}'
    if fault.status == 502:
        return b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    return orjson.dumps({"errors": [{"code": "server_error", "message": "Internal error"}]})


def _not_found() -> dict[str, Any]:
    return {
        "errors": [
            {"code": "not_found_error", "message": "The resource you requested was not found"}
        ]
    }


def _invalid(attribute: str, code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "attribute": attribute, "message": message}]}


class FakeClock:
    """An injectable ``sleep``: records every wait, sleeps none."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    @property
    def waited(self) -> float:
        return sum(self.sleeps)
