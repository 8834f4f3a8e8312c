"""deploy/nginx: the shipped site in Debian's nginx, with TLS (a self-signed certificate made
here), in front of a real ``drip-loader serve``: webhooks land through it, serve records the
client's address from X-Forwarded-For, the body limits agree, no log holds the token, and
only the webhook path and /healthz are reachable."""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from loader.warehouse.db import make_engine
from tests.casefiles import case_bytes
from tests.deploy.units import REPO
from tests.support.serve import TOKEN, ServeProcess
from tests.support.warehouse import one, rows

SITE = REPO / "deploy" / "nginx" / "drip-loader.conf"
CLIENT = "127.0.0.2"
"""The client's address: not nginx's own (127.0.0.1), so X-Forwarded-For is visible."""
MIB = 1024 * 1024

# What Debian's /etc/nginx/nginx.conf sets around the sites (its http-level logs included),
# with this test's paths.
MAIN = """
pid {root}/nginx.pid;
error_log {root}/logs/error.log;
events {{}}
http {{
    access_log {root}/logs/access.log;
    client_body_temp_path {root}/temp/body;
    proxy_temp_path {root}/temp/proxy;
    fastcgi_temp_path {root}/temp/fastcgi;
    uwsgi_temp_path {root}/temp/uwsgi;
    scgi_temp_path {root}/temp/scgi;
    include {root}/sites-enabled/*;
}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def render_site(*, root: Path, port: int, upstream: int) -> str:
    """The shipped site with this test's address, certificate, log folder and serve's port."""
    text = SITE.read_text()
    for installed, here in (
        ("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        ("/etc/letsencrypt/live/hooks.example.com/fullchain.pem", str(root / "cert.pem")),
        ("/etc/letsencrypt/live/hooks.example.com/privkey.pem", str(root / "key.pem")),
        ("/var/log/nginx/", f"{root}/logs/"),
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream};"),
    ):
        assert installed in text, installed
        text = text.replace(installed, here)
    return text


@dataclass
class Proxy:
    root: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        verify = ssl.create_default_context(cafile=str(self.root / "cert.pem"))
        transport = httpx.HTTPTransport(local_address=CLIENT, verify=verify)
        return httpx.Client(base_url=self.base, transport=transport, timeout=30)

    def logs(self) -> dict[str, str]:
        return {p.name: p.read_text(errors="replace") for p in (self.root / "logs").iterdir()}


def _nginx() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if found is None:
        pytest.fail("these tests need Debian's nginx: apt-get install nginx openssl (.ci/run)")
    return found


@pytest.fixture
def serve(db_url: str, tmp_path: Path) -> Iterator[ServeProcess]:
    with ServeProcess(db_url, tmp_path / "serve.log", "--forwarded-allow-ips", "127.0.0.1") as s:
        s.wait_healthy()
        yield s


@pytest.fixture
def proxy(serve: ServeProcess, tmp_path: Path) -> Iterator[Proxy]:
    root = tmp_path / "nginx"
    for folder in ("logs", "temp", "sites-enabled"):
        (root / folder).mkdir(parents=True)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem"),
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    port = _free_port()
    site = render_site(root=root, port=port, upstream=serve.port)
    (root / "sites-enabled" / "drip-loader").write_text(site)
    (root / "nginx.conf").write_text(MAIN.format(root=root))
    nginx = [_nginx(), "-p", str(root), "-c", str(root / "nginx.conf")]
    checked = subprocess.run([*nginx, "-t"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    output = root / "nginx.out"
    with open(output, "wb") as out:
        process = subprocess.Popen([*nginx, "-g", "daemon off;"], stdout=out, stderr=out)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "nginx did not listen"
            time.sleep(0.05)
    try:
        yield Proxy(root, port, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # graceful: the logs are complete after it
            process.wait(30)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url, null_pool=True)
    yield eng
    eng.dispose()


def test_a_webhook_over_https_lands_and_the_client_address_is_the_forwarded_one(
    proxy: Proxy, engine: Engine
) -> None:
    with proxy.client() as http:
        landed = http.post(f"/webhooks/drip/{TOKEN}", content=case_bytes("email_opened"))
        assert (landed.status_code, landed.json()) == (200, {"received": 1})
        # a client cannot choose the address recorded: nginx replaces X-Forwarded-For
        bad = http.post(
            f"/webhooks/drip/{TOKEN}", content=b"not json", headers={"X-Forwarded-For": "6.6.6.6"}
        )
        assert bad.status_code == 400, bad.text
    assert one(engine, "SELECT count(*) AS n FROM drip._raw_events")["n"] == 1
    (reject,) = rows(engine, "SELECT origin, raw_text FROM drip._rejects")
    assert reject["raw_text"] == "not json"
    assert reject["origin"].startswith(f"webhook:{CLIENT}:"), reject["origin"]


def test_the_body_limits_agree_serve_answers_413_and_keeps_the_head(
    proxy: Proxy, engine: Engine
) -> None:
    with proxy.client() as http:
        # over serve's --max-body-bytes (1 MiB), under nginx's 2m: serve answers and keeps it
        over_serve = http.post(f"/webhooks/drip/{TOKEN}", content=b"x" * (MIB + MIB // 2))
        assert over_serve.status_code == 413
        assert "error" in over_serve.json()
        # over nginx's limit: refused at the edge, never reaches serve
        over_nginx = http.post(f"/webhooks/drip/{TOKEN}", content=b"x" * (3 * MIB))
        assert over_nginx.status_code == 413
        assert "nginx" in over_nginx.text
    (reject,) = rows(engine, "SELECT raw_size, origin FROM drip._rejects")
    assert reject["raw_size"] == MIB + MIB // 2
    assert reject["origin"].startswith(f"webhook:{CLIENT}:")


def test_only_the_webhook_path_and_healthz_are_public(proxy: Proxy, serve: ServeProcess) -> None:
    with proxy.client() as http:
        health = http.get("/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        for path in ("/metrics", "/debugger", "/"):
            assert http.get(path).status_code == 404, path
        assert http.post("/webhooks/drip/not-the-token", content=b"{}").status_code == 404
    # /metrics is there, on the loopback address serve listens on
    assert serve.http.get("/metrics").status_code == 200


def test_no_log_holds_the_token(proxy: Proxy, serve: ServeProcess) -> None:
    with proxy.client() as http:
        assert http.post(f"/webhooks/drip/{TOKEN}", content=case_bytes("email_opened")).is_success
        assert http.post(f"/webhooks/drip/{TOKEN}?x=1", content=b"[").status_code == 400
        assert serve.stop() == 0
        # serve is gone: nginx logs a failed upstream connection (an error quoting the request)
        assert http.post(f"/webhooks/drip/{TOKEN}", content=b"{}").status_code == 502
    proxy.process.send_signal(signal.SIGQUIT)
    assert proxy.process.wait(30) == 0
    logs = proxy.logs()
    assert [name for name, text in logs.items() if TOKEN in text] == []
    access = logs["drip-loader.access.log"].splitlines()
    assert [line.split('"')[1] for line in access] == [
        "POST /webhooks/drip/*** HTTP/1.1",
        "POST /webhooks/drip/***?x=1 HTTP/1.1",
        "POST /webhooks/drip/*** HTTP/1.1",
    ]
    assert [line.split('"')[2].split()[0] for line in access] == ["200", "400", "502"]
    assert all(line.startswith(f"{CLIENT} ") for line in access)
    assert TOKEN not in serve.output()
