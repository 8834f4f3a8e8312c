"""Headless Chromium from Debian's packages (``/usr/bin/chromium``), driven by Playwright.

Playwright never downloads a browser here (``playwright install`` is never run): it drives
the system's Chromium, with a fresh profile each time and nothing that phones home.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


@contextlib.contextmanager
def chromium(profile: Path, **context: Any) -> Iterator[BrowserContext]:
    """A browser context on a fresh ``profile`` folder; ``context``: Playwright's options
    (``http_credentials``, ``viewport``, ...)."""
    profile.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=ARGS, **context
        )
        try:
            yield browser
        finally:
            browser.close()
