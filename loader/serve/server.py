"""Hosting ``serve``: bind the socket, run uvicorn with our signal handling, record the run."""

from __future__ import annotations

import contextlib
import copy
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import uvicorn

from ..config import WEBHOOK_TOKEN_ENV, ServeOptions, Settings
from ..errors import DatabaseUnavailable, ServeError
from ..warehouse.db import open_database
from .app import Receiver, create_app
from .metrics import ServeReport


class _Server(uvicorn.Server):
    """uvicorn, except that a signal-triggered graceful stop exits 0.

    uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown so the process dies by
    the signal; a receiver that drained cleanly has done its job, and process managers
    should see a clean exit.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _listen(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves: a clear error when taken, and port 0 works."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host}: {exc.strerror}; check --host") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ServeError(
            f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port "
            "or stop the process using it"
        ) from None
    sock.setblocking(False)
    return sock


def _log_config() -> dict[str, Any]:
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["loggers"]["loader"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def run_server(
    settings: Settings,
    options: ServeOptions,
    *,
    announce: Callable[[str], None] = lambda line: None,
) -> ServeReport:
    """Receive webhooks until SIGTERM/SIGINT; return what was received.

    The schema is migrated (or checked) first; when the database is not reachable yet the
    receiver starts anyway and answers 429 until it is.

    Raises:
        ConfigError: ``emit`` without a write key or with a bad Segment host (before the
            port or the database is touched), or the schema is behind head and
            ``migrate_first`` is off.
        ServeError: the address cannot be bound.
        LoaderError: the database (or the embedded server) failed at start.
    """
    if options.emit:
        from ..pipeline.emit import check_forwarding  # httpx only when forwarding is on

        # before the port and the database: a missing key is a typo, not an outage
        check_forwarding(write_key=settings.segment_write_key, host=settings.segment_host)
    load_id = uuid.uuid4().hex
    sock = _listen(options.host, options.port)
    try:
        host, port = sock.getsockname()[:2]
        options = replace(options, port=port)
        with open_database(settings, announce=announce) as engine:
            receiver = Receiver(engine, settings=settings, options=options, load_id=load_id)
            try:
                receiver.prepare()
            except DatabaseUnavailable as exc:
                announce(f"Warning: {exc}. Answering 429 until the database is reachable.")
            config = uvicorn.Config(
                create_app(receiver),
                log_config=_log_config(),
                access_log=False,  # it would log the token: the path is the secret
                proxy_headers=True,
                forwarded_allow_ips=options.forwarded_allow_ips,
                timeout_graceful_shutdown=int(options.shutdown_timeout),
                timeout_keep_alive=5,
                limit_concurrency=options.max_connections,
                server_header=False,
            )
            announce(
                f"Receiving Drip webhooks on http://{_url_host(host)}:{port}/webhooks/drip/<token> "
                f"(token from ${WEBHOOK_TOKEN_ENV}; run {load_id}); Ctrl-C or SIGTERM stops."
            )
            try:
                _Server(config).run(sockets=[sock])
            except BaseException as exc:
                receiver.finish(receiver.report(), error=exc)
                raise
            report = receiver.report()
            receiver.finish(report)
            return report
    finally:
        sock.close()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
