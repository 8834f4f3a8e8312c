"""The /debugger page in a real browser (Debian's headless Chromium, driven by Playwright)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Response, expect

from tests.casefiles import case_bytes
from tests.support.browser import chromium
from tests.support.serve import ServeProcess

ADMIN = "admin-Token_0123456789"
CREDENTIALS = {"username": "admin", "password": ADMIN}
LIVE_WITHIN_MS = 2000
"""Webhooks are on the page within 2 s of their answer."""
CLICK = case_bytes("email_link_clicked")  # john@acme.com, from 203.0.113.7


def opened(n: int, domain: str = "example.org") -> bytes:
    return json.dumps(
        {
            "event": "subscriber.opened_email",
            "data": {
                "account_id": "9999999",
                "subscriber": {
                    "id": f"sub{n}",
                    "email": f"reader.{n}@{domain}",
                    "custom_fields": {"first_name": "Zelda"},
                },
                "properties": {"delivery_id": str(n), "email_id": "7", "email_subject": "Hi"},
            },
            "occurred_at": "2026-10-06T15:50:02Z",
        }
    ).encode()


NO_TIME = json.dumps(
    {"event": "subscriber.bounced", "data": {"subscriber": {"email": "kim.lee@example.net"}}}
).encode()
EMAILS = ("john@acme.com", "reader.1@example.org", "reader.2@example.org", "kim.lee@example.net")


def start(db_url: str, tmp_path: Path, *, show_pii: bool = False) -> ServeProcess:
    env = {"DRIP_LOADER_ADMIN_TOKEN": ADMIN}
    if show_pii:
        env["DRIP_LOADER_DEBUGGER_SHOW_PII"] = "1"
    server = ServeProcess(db_url, tmp_path / "serve.log", env=env)
    server.wait_healthy()
    return server


@pytest.fixture
def serve(db_url: str, tmp_path: Path) -> Iterator[ServeProcess]:
    with start(db_url, tmp_path) as server:
        yield server


@pytest.fixture
def page(serve: ServeProcess, tmp_path: Path) -> Iterator[Page]:
    with chromium(tmp_path / "profile", http_credentials=CREDENTIALS) as browser:
        page = browser.new_page()
        page.goto(f"{serve.base}/debugger")
        expect(page.locator("#replica")).to_contain_text("live stream of")
        yield page


def rows(page: Page) -> list[str]:
    return page.locator("#requests tr.request").all_inner_texts()


def test_webhooks_appear_on_the_page_within_2_seconds(serve: ServeProcess, page: Page) -> None:
    for n in (1, 2):
        assert serve.post(opened(n)).status_code == 200
        answered = time.monotonic()
        expect(page.locator("#requests tr.request")).to_have_count(n, timeout=LIVE_WITHIN_MS)
        assert time.monotonic() - answered < LIVE_WITHIN_MS / 1000
    assert serve.post(CLICK).status_code == 200
    expect(page.locator("#requests tr.request")).to_have_count(3, timeout=LIVE_WITHIN_MS)
    newest = page.locator("#requests tr.request").first
    expect(newest).to_contain_text("subscriber.clicked_email")
    expect(newest).to_contain_text("landed")
    expect(newest).to_contain_text("email_link_clicked")
    expect(newest).to_contain_text("j***@acme.com")
    # A click shows the body pretty-printed.
    newest.click()
    body = page.locator("#requests tr.detail pre.body")
    expect(body).to_contain_text('"event": "subscriber.clicked_email"')
    expect(body).to_contain_text('"ip_address": "***"')
    expect(page.locator("#requests tr.request", has_text="r***@example.org")).to_have_count(2)


def test_a_reject_shows_with_its_reason_and_stays_in_view(serve: ServeProcess, page: Page) -> None:
    assert serve.post(NO_TIME).status_code == 400
    stream_row = page.locator("#requests tr.request", has_text="rejected")
    expect(stream_row).to_have_count(1, timeout=LIVE_WITHIN_MS)
    stream_row.click()
    expect(page.locator("#requests tr.detail")).to_contain_text("occurred_at is missing")
    reject = page.locator("#rejects li").first
    expect(reject).to_contain_text("occurred_at is missing", timeout=5000)
    expect(reject).to_contain_text("subscriber.bounced")
    expect(reject).to_contain_text("k***@example.net")
    for n in range(100):  # successes do not push it out of view
        assert serve.post(opened(n)).status_code == 200
    expect(page.locator("#requests tr.request")).to_have_count(101, timeout=LIVE_WITHIN_MS * 2)
    expect(page.locator("#rejects li")).to_have_count(1)
    expect(reject).to_be_in_viewport()


def test_pause_holds_new_webhooks_until_resume(serve: ServeProcess, page: Page) -> None:
    assert serve.post(opened(1)).status_code == 200
    expect(page.locator("#requests tr.request")).to_have_count(1, timeout=LIVE_WITHIN_MS)
    page.locator("#pause").click()
    expect(page.locator("#pause")).to_have_text("Resume")
    assert serve.post(opened(2)).status_code == 200
    assert serve.post(CLICK).status_code == 200
    expect(page.locator("#shown")).to_contain_text("2 waiting", timeout=LIVE_WITHIN_MS * 2)
    assert len(rows(page)) == 1
    page.locator("#pause").click()
    expect(page.locator("#pause")).to_have_text("Pause")
    expect(page.locator("#requests tr.request")).to_have_count(3)
    expect(page.locator("#requests tr.request").first).to_contain_text("subscriber.clicked_email")


def test_the_filter_matches_event_outcome_and_part_of_an_email(
    serve: ServeProcess, page: Page
) -> None:
    for body in (opened(1), opened(2, "other.net"), CLICK, NO_TIME):
        serve.post(body)
    expect(page.locator("#requests tr.request")).to_have_count(4, timeout=LIVE_WITHIN_MS)
    search = page.locator("#filter")
    for text, expected in [
        ("clicked", ["subscriber.clicked_email"]),
        ("rejected", ["subscriber.bounced"]),
        ("other.net", ["subscriber.opened_email"]),
        ("example.org opened", ["subscriber.opened_email"]),
        ("acme.com", ["subscriber.clicked_email"]),
        ("nothing-like-this", []),
        (
            "",
            [
                "subscriber.bounced",
                "subscriber.clicked_email",
                "subscriber.opened_email",
                "subscriber.opened_email",
            ],
        ),
    ]:
        search.fill(text)
        shown = [re.search(r"subscriber\.\w+", row)[0] for row in rows(page)]  # type: ignore[index]
        assert shown == expected, text
    expect(page.locator("#shown")).to_have_text("4 of 4 shown")


def test_without_credentials_the_page_is_401(serve: ServeProcess, tmp_path: Path) -> None:
    with chromium(tmp_path / "profile") as browser:
        page = browser.new_page()
        answers: list[Response] = []
        page.on("response", lambda answer: answers.append(answer))
        # A browser asks its user for the password; headless, there is nobody to ask.
        with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
            page.goto(f"{serve.base}/debugger")
        [answer] = answers
        assert answer.status == 401
        assert answer.headers["www-authenticate"] == (
            'Basic realm="drip-loader debugger", charset="UTF-8"'
        )
        assert "app.js" not in answer.text()


def everything_on(page: Page) -> str:
    """The page's DOM as HTML, and its text, with every body and reject opened."""
    for locator in page.locator("#requests tr.request").all():
        locator.click()
    for locator in page.locator("#rejects li").all():
        locator.click()
    return page.content() + page.locator("body").inner_text()


@pytest.mark.parametrize("show_pii", [False, True])
def test_no_unmasked_email_anywhere_on_the_page_unless_show_pii(
    db_url: str, tmp_path: Path, show_pii: bool
) -> None:
    with (
        start(db_url, tmp_path, show_pii=show_pii) as serve,
        chromium(tmp_path / "profile", http_credentials=CREDENTIALS) as browser,
    ):
        page = browser.new_page()
        page.goto(f"{serve.base}/debugger")
        for body in (CLICK, opened(1), opened(2), NO_TIME):
            serve.post(body)
        expect(page.locator("#requests tr.request")).to_have_count(4, timeout=LIVE_WITHIN_MS)
        expect(page.locator("#rejects li")).to_have_count(1, timeout=5000)
        expect(page.locator("#pii")).to_have_text("PII shown" if show_pii else "PII masked")
        html = everything_on(page)
        expect(page.locator("#requests pre.body")).to_have_count(4)
        for email in EMAILS:
            assert (email in html) is show_pii, email
        for name in ("Zelda", "203.0.113.7"):
            assert (name in html) is show_pii, name
        if not show_pii:
            for masked in ("j***@acme.com", "r***@example.org", "k***@example.net"):
                assert masked in html
