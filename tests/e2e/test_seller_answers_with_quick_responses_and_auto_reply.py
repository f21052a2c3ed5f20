"""A buyer's first message gets the seller's auto-reply, marked as automatic; the seller then
composes an answer from quick responses (picked with "/", Alt+Q or the button, placeholders
filled for this buyer) and sends it, and the buyer sees it arrive live."""

import re

import pytest
from playwright.sync_api import expect

from inbox.services import create_quick_response, save_auto_reply
from tests.e2e.support import assert_same_document, expect_live, log_in, mark_document, open_page

pytestmark = [pytest.mark.needs_browser, pytest.mark.django_db(transaction=True)]

FIRST = "Hello Sam, could you illustrate a children's book for me?"
AUTO_REPLY = "Hi Bella, thanks for writing! I answer within a few hours."
THANKS = "Thanks Bella, I am on it."
BRIEF = "Could you send me the brief, Bella Buyer?"
SIGN_OFF = "Best wishes, Sam Seller"


def test_seller_answers_with_quick_responses_and_auto_reply(daphne_servers, launch_browser, buyer, seller):
    save_auto_reply(
        user=seller,
        body="Hi {buyer_first_name}, thanks for writing! I answer within a few hours.",
        enabled=True,
    )
    create_quick_response(user=seller, title="Thanks", body="Thanks {buyer_first_name}, I am on it.")
    create_quick_response(user=seller, title="Brief", body="Could you send me the brief, {buyer_name}?")
    create_quick_response(user=seller, title="Sign-off", body="Best wishes, {seller_name}")
    server = daphne_servers.start()
    browser = launch_browser()
    seller_page = open_page(browser, server)
    buyer_page = open_page(browser, server)

    # The seller waits on /inbox/ with nothing in it.
    log_in(seller_page, "seller")
    expect_live(seller_page)
    expect(seller_page.locator(".conversation-row")).to_have_count(0)
    mark_document(seller_page)

    # The buyer writes from the seller's profile: the auto-reply answers at once, filled with the
    # buyer's first name and marked as automatic.
    log_in(buyer_page, "buyer")
    buyer_page.goto("/u/seller/")
    buyer_page.get_by_label("Message Sam Seller").fill(FIRST)
    buyer_page.get_by_role("button", name="Contact Sam Seller").click()
    expect(buyer_page).to_have_url(re.compile(r"/inbox/\d+/$"))
    conversation_id = int(buyer_page.url.rstrip("/").rsplit("/", 1)[1])
    expect(buyer_page.locator("#thread li.message.mine .bubble")).to_have_text([FIRST])
    buyer_auto = buyer_page.locator("#thread li.message.theirs")
    expect(buyer_auto.locator(".bubble")).to_have_text([AUTO_REPLY])
    expect(buyer_auto.locator(".automatic-tag")).to_have_text("Automatic reply")
    expect(buyer_page.locator("#thread li.message.mine .automatic-tag")).to_have_count(0)
    # Quick responses are a seller tool: the buyer's composer has no picker.
    expect(buyer_page.locator("#quick-responses-button")).to_have_count(0)
    expect_live(buyer_page)
    mark_document(buyer_page)

    # The conversation reaches the seller's list live, and the seller opens it: their own
    # auto-reply is marked there too.
    seller_row = seller_page.locator(f'.conversation-row[data-conversation-id="{conversation_id}"]')
    expect(seller_row).to_contain_text("Bella Buyer")
    # The auto-reply answered for the seller, but they have not read the message: it is unread
    # for them, and the buyer is not told "Seen".
    expect(seller_row.locator(".unread-badge")).to_have_text("1")
    expect(buyer_page.locator("#seen-marker")).to_be_hidden()
    assert_same_document(seller_page)
    seller_row.click()
    expect(seller_page).to_have_url(re.compile(rf"/inbox/{conversation_id}/$"))
    expect(seller_page.locator("#thread li.message.theirs .bubble")).to_have_text([FIRST])
    seller_auto = seller_page.locator("#thread li.message.mine")
    expect(seller_auto.locator(".bubble")).to_have_text([AUTO_REPLY])
    expect(seller_auto.locator(".automatic-tag")).to_have_text("Automatic reply")
    expect_live(seller_page)
    mark_document(seller_page)

    composer = seller_page.locator("#composer-body")
    panel = seller_page.locator("#quick-responses-panel")
    finder = seller_page.locator("#quick-responses-filter")
    options = panel.get_by_role("option")
    selected = panel.locator("[role=option][aria-selected=true]")
    expect(composer).to_have_value("")
    expect(panel).to_be_hidden()

    # "/" in the empty composer opens the picker (the slash is not typed): every quick response,
    # by title, filled for Bella; the first is selected and the finder has the focus.
    composer.click()
    composer.press("/")
    expect(panel).to_be_visible()
    expect(finder).to_be_focused()
    expect(composer).to_have_value("")
    expect(options).to_have_text([f"Brief {BRIEF}", f"Sign-off {SIGN_OFF}", f"Thanks {THANKS}"])
    expect(selected).to_have_text(f"Brief {BRIEF}")

    # Typing filters; Enter inserts the one left and gives the composer back.
    finder.press_sequentially("than")
    expect(options).to_have_text([f"Thanks {THANKS}"])
    finder.press("Enter")
    expect(panel).to_be_hidden()
    expect(composer).to_have_value(THANKS)
    expect(composer).to_be_focused()
    # Enter chose a response: it did not send the message.
    expect(seller_page.locator("#thread li.message")).to_have_count(2)

    # At the end of the text, Alt+Q opens the picker again, unfiltered; ArrowDown moves the
    # selection (wrapping round) and Enter inserts the selected one at the caret.
    composer.press("End")
    composer.press_sequentially(" ")
    composer.press("Alt+KeyQ")
    expect(panel).to_be_visible()
    expect(finder).to_be_focused()
    expect(finder).to_have_value("")
    expect(options).to_have_count(3)
    expect(selected).to_have_text(f"Brief {BRIEF}")
    finder.press("ArrowDown")
    expect(selected).to_have_text(f"Sign-off {SIGN_OFF}")
    finder.press("ArrowDown")
    expect(selected).to_have_text(f"Thanks {THANKS}")
    finder.press("ArrowDown")
    expect(selected).to_have_text(f"Brief {BRIEF}")
    finder.press("Enter")
    expect(panel).to_be_hidden()
    expect(composer).to_have_value(f"{THANKS} {BRIEF}")
    expect(composer).to_be_focused()

    # Escape closes the picker without inserting anything.
    composer.press("Alt+KeyQ")
    expect(panel).to_be_visible()
    finder.press("ArrowDown")
    expect(selected).to_have_text(f"Sign-off {SIGN_OFF}")
    finder.press("Escape")
    expect(panel).to_be_hidden()
    expect(composer).to_be_focused()
    expect(composer).to_have_value(f"{THANKS} {BRIEF}")

    # The "Quick responses" button opens it too, and a click on an option inserts it at the caret
    # (here on a new line).
    composer.press("Shift+Enter")
    button = seller_page.get_by_role("button", name="Quick responses")
    expect(button).to_have_attribute("aria-expanded", "false")
    button.click()
    expect(panel).to_be_visible()
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(finder).to_be_focused()
    options.filter(has_text="Sign-off").click()
    expect(panel).to_be_hidden()
    expect(button).to_have_attribute("aria-expanded", "false")
    composed = f"{THANKS} {BRIEF}\n{SIGN_OFF}"
    expect(composer).to_have_value(composed)
    expect(composer).to_be_focused()

    # Enter sends what the seller composed; the buyer sees it arrive live, not marked automatic.
    composer.press("Enter")
    expect(composer).to_have_value("")
    expect(seller_page.locator("#thread li.message.mine .bubble")).to_have_text(
        [AUTO_REPLY, composed], use_inner_text=True
    )
    buyer_thread = buyer_page.locator("#thread li.message")
    expect(buyer_thread.locator(".bubble")).to_have_text([FIRST, AUTO_REPLY, composed], use_inner_text=True)
    expect(buyer_thread.last).to_have_class(re.compile(r"\btheirs\b"))
    expect(buyer_thread.last.locator(".automatic-tag")).to_have_count(0)
    expect(buyer_page.locator("#thread .automatic-tag")).to_have_count(1)
    assert_same_document(buyer_page)
    assert_same_document(seller_page)

    assert seller_page.js_errors == [], seller_page.js_errors
    assert buyer_page.js_errors == [], buyer_page.js_errors
