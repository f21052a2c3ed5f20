"""A buyer writes to a seller from the seller's profile; both inboxes update live, no reloads."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.support import (
    assert_same_document,
    expect_live,
    local_time_pattern,
    log_in,
    mark_document,
    open_page,
    thread_bodies,
)

pytestmark = [pytest.mark.needs_browser, pytest.mark.django_db(transaction=True)]

FIRST = "Hello Sam, could you design a logo for my bakery?"
REPLY = "Happy to help! What colours do you like?"


def test_buyer_and_seller_chat_live(daphne_servers, launch_browser, buyer, seller):
    server = daphne_servers.start()
    browser = launch_browser()
    # Browser clocks in a third zone: the panels must show the other person's zone, not ours.
    seller_page = open_page(browser, server, timezone_id="America/New_York")
    buyer_page = open_page(browser, server, timezone_id="America/New_York")

    # The seller waits on /inbox/ with nothing in it.
    log_in(seller_page, "seller")
    expect_live(seller_page)
    expect(seller_page.locator(".conversation-row")).to_have_count(0)
    mark_document(seller_page)

    # The buyer writes from the seller's profile and lands in the new conversation.
    log_in(buyer_page, "buyer")
    buyer_page.goto("/u/seller/")
    buyer_page.get_by_label("Message Sam Seller").fill(FIRST)
    buyer_page.get_by_role("button", name="Contact Sam Seller").click()
    expect(buyer_page).to_have_url(re.compile(r"/inbox/\d+/$"))
    conversation_id = int(buyer_page.url.rstrip("/").rsplit("/", 1)[1])
    expect(buyer_page.locator("#thread li.message.mine .bubble")).to_have_text([FIRST])
    expect_live(buyer_page)
    mark_document(buyer_page)

    # The seller's list shows it live, unread.
    seller_row = seller_page.locator(f'.conversation-row[data-conversation-id="{conversation_id}"]')
    expect(seller_row).to_contain_text("Bella Buyer")
    expect(seller_row).to_contain_text(FIRST)
    expect(seller_row.locator(".unread-badge")).to_have_text("1")
    assert_same_document(seller_page)

    # The seller opens it and reads the message; the buyer sees "Seen" under theirs.
    seller_row.click()
    expect(seller_page).to_have_url(re.compile(rf"/inbox/{conversation_id}/$"))
    expect(seller_page.locator("#thread li.message.theirs .bubble")).to_have_text([FIRST])
    expect_live(seller_page)
    mark_document(seller_page)
    expect(buyer_page.locator("#thread li.message.mine").last.locator("#seen-marker")).to_be_visible()
    expect(buyer_page.locator("#seen-marker")).to_have_text("Seen")
    # Opening it cleared the seller's unread badge.
    seller_row = seller_page.locator(f'.conversation-row[data-conversation-id="{conversation_id}"]')
    expect(seller_row).to_have_class(re.compile(r"\bactive\b"))
    expect(seller_row.locator(".unread-badge")).to_have_count(0)

    # Each panel shows the other person: their local time, and "Online" while their tab is open.
    expect(buyer_page.locator("#other-presence")).to_have_text("Online")
    expect(buyer_page.locator("#other-local-time")).to_have_text(local_time_pattern("Asia/Tokyo"))
    expect(seller_page.locator("#other-presence")).to_have_text("Online")
    expect(seller_page.locator("#other-local-time")).to_have_text(local_time_pattern("Europe/Paris"))

    # The seller types: the buyer sees "typing…".
    composer = seller_page.get_by_label("Message Bella Buyer")
    composer.press_sequentially(REPLY, delay=10)
    expect(buyer_page.locator("#typing-indicator")).to_be_visible()
    expect(buyer_page.locator("#typing-indicator")).to_have_text("typing…")

    # Enter sends. The seller's own thread shows it and the composer empties.
    composer.press("Enter")
    expect(seller_page.locator("#thread li.message.mine .bubble")).to_have_text([REPLY])
    expect(composer).to_have_value("")

    # The buyer sees the reply arrive live; "typing…" goes away; their list shows the conversation.
    expect(buyer_page.locator("#thread li.message.theirs .bubble")).to_have_text([REPLY])
    expect(buyer_page.locator("#typing-indicator")).to_be_hidden()
    assert thread_bodies(buyer_page) == [FIRST, REPLY]
    buyer_row = buyer_page.locator(f'.conversation-row[data-conversation-id="{conversation_id}"]')
    expect(buyer_row).to_contain_text("Sam Seller")
    expect(buyer_row).to_contain_text(REPLY)
    # The buyer has the thread open, so the reply counts as read: no badge, and the seller sees "Seen".
    expect(buyer_row.locator(".unread-badge")).to_have_count(0)
    expect(seller_page.locator("#thread li.message.mine").last.locator("#seen-marker")).to_be_visible()

    expect(seller_page.locator(".unread-badge")).to_have_count(0)
    assert_same_document(buyer_page)
    assert_same_document(seller_page)

    assert seller_page.js_errors == [], seller_page.js_errors

    # Presence is live too: when the seller's tab closes, the buyer sees them go offline.
    seller_page.context.close()
    expect(buyer_page.locator("#other-presence")).to_have_text("Offline")
    assert buyer_page.js_errors == [], buyer_page.js_errors
