"""On a phone-sized screen the inbox shows one pane at a time, and the composer works."""

import re

import pytest
from playwright.sync_api import Page, expect

from inbox import services
from tests.e2e.support import PHONE, expect_live, log_in, open_page, thread_bodies

pytestmark = [pytest.mark.needs_browser, pytest.mark.django_db(transaction=True)]

QUESTION = "Hi! Do you also do business cards, letterheads and a matching email signature?"
ANSWER = "Yes, send me your logo and I'll quote you."


def assert_fits_the_screen(page: Page, selector: str) -> None:
    """Nothing scrolls sideways, and `selector` is inside the viewport without scrolling."""
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "scrolls sideways"
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not rendered"
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], box


def test_inbox_works_on_a_phone(daphne_servers, launch_browser, buyer, seller):
    conversation, _message, _created = services.start_conversation(
        sender=buyer, recipient_username="seller", body=QUESTION
    )
    server = daphne_servers.start()
    browser = launch_browser()
    page = open_page(browser, server, viewport=PHONE, is_mobile=True, has_touch=True)

    # The list alone: no thread pane, no side panel.
    log_in(page, "seller")
    expect_live(page)
    row = page.locator(f'.conversation-row[data-conversation-id="{conversation.pk}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("Bella Buyer")
    expect(row.locator(".unread-badge")).to_have_text("1")
    expect(page.locator(".pane-thread")).to_be_hidden()
    expect(page.locator(".pane-panel")).to_be_hidden()
    assert_fits_the_screen(page, ".pane-list")

    # Opening the conversation shows the thread alone, with a way back.
    row.tap()
    expect(page).to_have_url(re.compile(rf"/inbox/{conversation.pk}/$"))
    expect(page.locator(".pane-list")).to_be_hidden()
    expect(page.locator(".pane-panel")).to_be_hidden()
    expect(page.locator("#thread li.message.theirs .bubble")).to_have_text([QUESTION])
    back = page.get_by_role("link", name="Back to conversations")
    expect(back).to_be_visible()
    expect_live(page)

    # The composer is on screen and sends.
    composer = page.get_by_label("Message Bella Buyer")
    assert_fits_the_screen(page, "#composer")
    composer.tap()
    composer.fill(ANSWER)
    page.get_by_role("button", name="Send").tap()
    expect(page.locator("#thread li.message.mine .bubble")).to_have_text([ANSWER])
    expect(composer).to_have_value("")
    expect(page.locator("#composer-error")).to_be_hidden()
    assert thread_bodies(page) == [QUESTION, ANSWER]
    assert_fits_the_screen(page, "#composer")

    # Back to the list, which now leads with the answer and has nothing unread.
    back.tap()
    expect(page).to_have_url(re.compile(r"/inbox/$"))
    expect(page.locator(".pane-thread")).to_be_hidden()
    expect(row).to_contain_text(f"You: {ANSWER}")
    expect(row.locator(".unread-badge")).to_have_count(0)
    assert page.js_errors == [], page.js_errors
