"""A real local HTTP server implementing Segment's ``POST /v1/batch`` contract, for tests.

It listens on 127.0.0.1 (a free port), checks what Segment checks (the write key as the
HTTP Basic user, at most 500 KB per request, 32 KB per message, 2,500 messages), records
every request and the messages it accepted, and can be told to misbehave for the next
requests: answer 500, 429 with a ``Retry-After``, 400, or stall (hold the request open).

In a test::

    with SegmentSink(write_key="wk") as sink:
        sink.plan(500, 200)           # first request 500, then normal
        ... emit to sink.url ...
        sink.messages                 # every accepted message, parsed

As a process (the benchmark):  python -m tests.support.segment_sink --write-key K
prints its URL, then serves; ``GET /stats`` answers the counts as JSON.
"""

from __future__ import annotations

import argparse
import base64
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import orjson

from tests.support.local_http import LocalHTTPServer

MAX_REQUEST_BYTES = 500_000
MAX_MESSAGE_BYTES = 32 * 1024
MAX_MESSAGES = 2_500
STALL_LIMIT_S = 30.0
"""A stalled request is held at most this long (bounded, even if a test forgets it)."""


@dataclass
class Stall:
    """Hold the request open until :meth:`SegmentSink.release` (or the limit), then answer."""

    status: int = 200


@dataclass
class Request:
    """One request as the sink saw it."""

    status: int
    size: int
    messages: int
    message_ids: list[str] = field(default_factory=list)


class SegmentSink:
    """The server; use as a context manager (starts and stops the serving thread)."""

    def __init__(self, *, write_key: str, keep_messages: bool = True) -> None:
        self.write_key = write_key
        self.keep_messages = keep_messages
        self.requests: list[Request] = []
        self.messages: list[dict[str, Any]] = []
        self.accepted = 0
        self.reject_ids: set[str] = set()
        """Answer 400 to any request carrying one of these message ids (a bad event)."""
        self.stalled = threading.Event()
        """Set when a request starts stalling."""
        self._release = threading.Event()
        self._plan: deque[int | tuple[int, str] | Stall] = deque()
        self._lock = threading.Lock()
        self._expected = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
        self._http = LocalHTTPServer(self._handler())

    @property
    def url(self) -> str:
        return self._http.origin

    def __enter__(self) -> SegmentSink:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._http.stop()

    def plan(self, *answers: int | tuple[int, str] | Stall) -> None:
        """Answer the next requests: a status, ``(429, "1")`` (with a Retry-After), or a Stall."""
        with self._lock:
            self._plan.extend(answers)

    def release(self) -> None:
        """Let stalled requests answer."""
        self._release.set()

    def message_ids(self) -> list[str]:
        with self._lock:
            return [m["messageId"] for m in self.messages]

    def _next_answer(self) -> int | tuple[int, str] | Stall | None:
        with self._lock:
            return self._plan.popleft() if self._plan else None

    def _judge(self, headers: Any, body: bytes) -> tuple[int, bytes, list[dict[str, Any]]]:
        """Segment's checks: (status, answer body, messages accepted)."""
        if headers.get("Authorization") != self._expected:
            return 401, b'{"code":"unauthorized","message":"invalid write key"}', []
        if len(body) > MAX_REQUEST_BYTES:
            return 400, b'{"code":"too_large","message":"batch over 500 KB"}', []
        try:
            payload = orjson.loads(body)
            batch = payload["batch"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return 400, b'{"code":"invalid_request","message":"invalid JSON"}', []
        if len(batch) > MAX_MESSAGES:
            return 400, b'{"code":"too_many","message":"more than 2500 messages"}', []
        for message in batch:
            if len(orjson.dumps(message)) > MAX_MESSAGE_BYTES:
                return 400, b'{"code":"too_large","message":"message over 32 KB"}', []
            if message.get("messageId") in self.reject_ids:
                return 400, b'{"code":"invalid_request","message":"invalid message"}', []
        return 200, b'{"success":true}', batch

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like Segment's API
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path != "/stats":
                    self._answer(404, b"{}")
                    return
                with sink._lock:
                    stats = {"requests": len(sink.requests), "accepted": sink.accepted}
                self._answer(200, orjson.dumps(stats))

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/v1/batch":
                    self._answer(404, b'{"code":"not_found","message":"not found"}')
                    return
                status, answer, accepted = sink._judge(self.headers, body)
                planned = sink._next_answer() if status == 200 else None
                extra: dict[str, str] = {}
                if isinstance(planned, Stall):
                    sink.stalled.set()
                    sink._release.wait(STALL_LIMIT_S)
                    planned = planned.status
                if isinstance(planned, tuple):
                    planned, extra["Retry-After"] = planned
                if planned is not None and planned != 200:
                    status, answer, accepted = (
                        planned,
                        b'{"code":"planned","message":"planned"}',
                        [],
                    )
                with sink._lock:
                    ids = [m.get("messageId") for m in accepted]
                    sink.requests.append(Request(status, len(body), len(accepted), ids))
                    sink.accepted += len(accepted)
                    if sink.keep_messages:
                        sink.messages.extend(accepted)
                try:
                    self._answer(status, answer, extra)
                except OSError:
                    pass  # the client gave up waiting (a timeout test, or a killed process)

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="A local Segment /v1/batch sink.")
    parser.add_argument("--write-key", required=True)
    args = parser.parse_args()
    sink = SegmentSink(write_key=args.write_key, keep_messages=False)
    print(sink.url, flush=True)
    sink._http.server.serve_forever()


if __name__ == "__main__":
    main()
