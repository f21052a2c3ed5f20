"""Browser fixtures: Debian's Chromium driven by Playwright's sync API.

Playwright's sync API runs an asyncio loop in this thread, and Django refuses ORM calls while
one is running. So a test creates its users and data first, then calls `launch_browser()`.
"""

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def launch_browser(chromium_path, transactional_db):
    """Call it (after all ORM work) to start Chromium. Closed before the database is flushed."""
    started = {}

    def launch():
        assert not started, "one browser per test: open several contexts instead"
        started["playwright"] = sync_playwright().start()
        started["browser"] = started["playwright"].chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        return started["browser"]

    yield launch
    if "browser" in started:
        started["browser"].close()
    if "playwright" in started:
        started["playwright"].stop()
