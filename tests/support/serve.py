"""Run ``drip-loader serve`` as a real process on 127.0.0.1 (a free port), for the tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

BIN = Path(sys.executable).parent / "drip-loader"
TOKEN = "test-token-Abc123_xyz-0123456789"
_LISTENING = re.compile(r"http://127\.0\.0\.1:(\d+)/webhooks/drip/<token>")


class ServeProcess:
    """``drip-loader serve --port 0`` against ``db_url``; its output goes to ``log``.

    ``db_url`` None: the embedded server under ``$DRIP_LOADER_HOME`` (give it in ``env``).
    """

    def __init__(
        self,
        db_url: str | None,
        log: Path,
        *args: str,
        token: str = TOKEN,
        env: dict[str, str] | None = None,
    ) -> None:
        self.log = log
        environ = {
            k: v
            for k, v in os.environ.items()
            if db_url is not None or (not k.startswith("DRIP_LOADER_") and k != "DATABASE_URL")
        }
        env = {**environ, "DRIP_LOADER_WEBHOOK_TOKEN": token, **(env or {})}
        if db_url is not None:
            env["DRIP_LOADER_DATABASE_URL"] = db_url
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(BIN), "serve", "--port", "0", *args], env=env, stdout=out, stderr=out
            )
        self.port = self._wait_listening()
        self.base = f"http://127.0.0.1:{self.port}"
        self.webhook = f"{self.base}/webhooks/drip/{token}"
        self.http = httpx.Client(base_url=self.base, timeout=20)

    def _wait_listening(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _LISTENING.search(self.output())
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"serve did not start within {timeout} s:\n{self.output()}")

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.http.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"serve not healthy within {timeout} s:\n{self.output()}")

    def post(self, body: bytes | str) -> httpx.Response:
        content = body.encode() if isinstance(body, str) else body
        return self.http.post(self.webhook, content=content)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait; the exit code."""
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"serve did not stop within {timeout} s:\n{self.output()}"
            ) from None

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.http.close()
