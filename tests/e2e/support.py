"""Steps the browser tests share: log in through the real form, open a signed-in page."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, Page, expect

from tests.factories import TEST_PASSWORD

TIMEOUT_MS = 10_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

expect.set_options(timeout=TIMEOUT_MS)


def open_page(browser: Browser, base_url: str, **context_options) -> Page:
    """A page in a fresh browser context (its own cookies: one person). Uncaught JS errors are
    collected in `page.js_errors` for the test to assert on."""
    context_options.setdefault("viewport", DESKTOP)
    context_options.setdefault("locale", "en-GB")
    context = browser.new_context(base_url=base_url, **context_options)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    return page


def log_in(page: Page, username: str) -> None:
    """Log in through the real form; Django sends a logged-in user to the inbox."""
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/inbox/$"))


def expect_live(page: Page) -> None:
    """The page's websocket is open."""
    expect(page.locator("#connection-state")).to_have_text("Live")


def mark_document(page: Page) -> None:
    """Tag the current document; `assert_same_document` then proves no reload happened."""
    page.evaluate("window.__e2eDocument = true")


def assert_same_document(page: Page) -> None:
    assert page.evaluate("window.__e2eDocument === true"), "the page reloaded"


def thread_bodies(page: Page) -> list[str]:
    return page.locator("#thread li.message .bubble").all_inner_texts()


def local_time_pattern(zone: str) -> re.Pattern:
    """What the panel shows for someone in `zone` now (a minute either way for clock ticks)."""
    now = datetime.now(ZoneInfo(zone))
    shown = [(now + timedelta(minutes=delta)).strftime("%a %H:%M") for delta in (-1, 0, 1)]
    return re.compile(rf"^({'|'.join(shown)}) \({re.escape(zone)}\)$")
