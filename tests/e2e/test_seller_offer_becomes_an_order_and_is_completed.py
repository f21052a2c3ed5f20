"""A seller sends a custom offer from the thread; the buyer sees the card arrive live and accepts
it; the order's number tags the next messages; the seller delivers from the order page and the
buyer completes the order. Each side sees the card and the timeline change live, without
reloading.

Set E2E_SCREENSHOT_DIR to keep screenshots of the offer card and the order page."""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from inbox.services import start_conversation
from orders.services import create_gig
from tests.e2e.support import assert_same_document, expect_live, log_in, mark_document, open_page

pytestmark = [pytest.mark.needs_browser, pytest.mark.django_db(transaction=True)]

FIRST = "Hi Sam, could you make a logo for my bakery?"
OFFER_TEXT = "Three logo concepts for Le Fournil, vector files included."
COLOURS = "Lovely! My colours are terracotta and cream."
REPLY = "Noted, starting with terracotta."
DELIVERY = "Here are the three concepts, as SVG and PNG."


def screenshot(page: Page, name: str, locator=None) -> None:
    folder = os.environ.get("E2E_SCREENSHOT_DIR")
    if folder:
        target = locator if locator is not None else page
        target.screenshot(path=str(Path(folder) / name))


def test_seller_offer_becomes_an_order_and_is_completed(daphne_servers, launch_browser, buyer, seller):
    conversation, _message, _created = start_conversation(
        sender=buyer, recipient_username="seller", body=FIRST
    )
    gig = create_gig(
        seller=seller,
        title="I will design your logo",
        description="A hand-drawn logo.",
        price=120,
        delivery_days=5,
        revisions=2,
    )
    server = daphne_servers.start()
    browser = launch_browser()
    seller_page = open_page(browser, server, timezone_id="Asia/Tokyo")
    buyer_page = open_page(browser, server, timezone_id="Europe/Paris")
    thread_url = f"/inbox/{conversation.pk}/"

    log_in(seller_page, "seller")
    seller_page.goto(thread_url)
    expect_live(seller_page)
    mark_document(seller_page)
    log_in(buyer_page, "buyer")
    buyer_page.goto(thread_url)
    expect_live(buyer_page)
    mark_document(buyer_page)

    # Only the seller has the offer and call tools.
    expect(seller_page.get_by_text("Create an offer")).to_be_visible()
    expect(seller_page.get_by_role("button", name="Start call")).to_be_visible()
    expect(buyer_page.get_by_text("Create an offer")).to_have_count(0)
    expect(buyer_page.get_by_role("button", name="Start call")).to_have_count(0)
    expect(buyer_page.get_by_text("Offer a consultation")).to_have_count(0)

    # The seller makes an offer from their gig; a bad price comes back beside the field, the
    # description kept.
    seller_page.get_by_text("Create an offer").click()
    seller_page.get_by_label("Based on").select_option(str(gig.pk))
    seller_page.get_by_label("Description").fill(OFFER_TEXT)
    seller_page.get_by_label("Price (USD)").fill("-5")
    seller_page.get_by_role("button", name="Send offer").click()
    expect(seller_page.locator("#offer-price-error")).to_contain_text("between $5")
    expect(seller_page.get_by_label("Description")).to_have_value(OFFER_TEXT)
    seller_page.get_by_label("Price (USD)").fill("150")
    seller_page.get_by_role("button", name="Send offer").click()
    seller_card = seller_page.locator("#thread li.kind-offer")
    expect(seller_card).to_contain_text(OFFER_TEXT)
    expect(seller_card.locator(".card-status")).to_have_text("Pending")
    expect(seller_card.get_by_role("button", name=re.compile(r"^Withdraw"))).to_be_visible()
    expect(seller_page.locator("#offer-tool")).not_to_have_attribute("open", "")

    # The buyer sees the card arrive live: its terms, and Accept / Decline.
    buyer_card = buyer_page.locator("#thread li.kind-offer")
    expect(buyer_card).to_contain_text(OFFER_TEXT)
    expect(buyer_card).to_contain_text("$150.00")
    expect(buyer_card).to_contain_text("5 days")
    expect(buyer_card.locator(".card-status")).to_have_text("Pending")
    expect(buyer_card.get_by_role("button", name=re.compile(r"^Decline"))).to_be_visible()
    buyer_card.scroll_into_view_if_needed()
    screenshot(buyer_page, "offer-card.png", buyer_card)

    # A double click accepts once: one order, and the card now links to it on both sides.
    buyer_card.get_by_role("button", name=re.compile(r"^Accept")).dblclick()
    expect(buyer_card.locator(".card-status")).to_have_text("Accepted")
    order_link = buyer_card.get_by_role("link", name=re.compile(r"^View order #FO[A-Z0-9]{8}$"))
    expect(order_link).to_be_visible()
    number = order_link.inner_text().rsplit("#", 1)[1]
    expect(seller_card.locator(".card-status")).to_have_text("Accepted")
    expect(seller_card.get_by_role("link", name=f"View order #{number}")).to_be_visible()
    expect(buyer_card.get_by_role("button", name=re.compile(r"^Accept"))).to_have_count(0)
    # Each panel's order history between the two lists it, live.
    expect(seller_page.locator("#order-history")).to_contain_text(f"#{number}")
    expect(buyer_page.locator("#order-history")).to_contain_text("You ordered · In progress")
    for page in (buyer_page, seller_page):
        created = page.locator("#thread li.kind-system", has_text="Order created")
        expect(created).to_have_count(1)
        expect(created.locator("a.order-link")).to_have_text(f"Order #{number}")
        expect(created.locator(".order-tag")).to_have_attribute("title", f"Order #{number}")

    # The next messages carry the order's number: an icon whose tooltip names it.
    buyer_page.get_by_label("Message Sam Seller").fill(COLOURS)
    buyer_page.get_by_label("Message Sam Seller").press("Enter")
    mine = buyer_page.locator("#thread li.message.mine", has_text=COLOURS)
    expect(mine.locator(".order-tag")).to_have_attribute("title", f"Order #{number}")
    theirs = seller_page.locator("#thread li.message.theirs", has_text=COLOURS)
    expect(theirs.locator(".order-tag")).to_have_attribute("href", f"/orders/{number}/")
    theirs.locator(".order-tag").hover()
    expect(theirs.locator(".order-tag-tip")).to_have_text(f"#{number}")
    expect(theirs.locator(".order-tag-tip")).to_have_css("opacity", "1")
    seller_page.get_by_label("Message Bella Buyer").fill(REPLY)
    seller_page.get_by_label("Message Bella Buyer").press("Enter")
    expect(
        buyer_page.locator("#thread li.message.theirs", has_text=REPLY).locator(".order-tag")
    ).to_have_attribute("title", f"Order #{number}")
    first_message = buyer_page.locator("#thread li.message", has_text=FIRST)
    expect(first_message.locator(".order-tag")).to_have_count(0)  # written before the order
    assert_same_document(buyer_page)
    assert_same_document(seller_page)

    # Each opens the order: the seller from the tag, the buyer from the card.
    theirs.locator(".order-tag").click()
    expect(seller_page).to_have_url(re.compile(rf"/orders/{number}/$"))
    order_link.click()
    expect(buyer_page).to_have_url(re.compile(rf"/orders/{number}/$"))
    for page in (buyer_page, seller_page):
        expect_live(page)
        expect(page.locator("#order-status")).to_have_text("In progress")
        expect(page.locator("#thread")).to_contain_text(COLOURS)
        expect(page.locator("#thread")).not_to_contain_text(FIRST)  # only this order's messages
    mark_document(buyer_page)

    # The seller delivers from the order page.
    seller_page.get_by_label("Delivery message").fill(DELIVERY)
    seller_page.get_by_role("button", name="Deliver now").click()
    expect(seller_page.locator("#order-status")).to_have_text("Delivered")
    expect_live(seller_page)
    mark_document(seller_page)

    # The buyer's open page follows live: status, timeline, the delivery in the messages.
    expect(buyer_page.locator("#order-status")).to_have_text("Delivered")
    expect(buyer_page.locator("#order-timeline")).to_contain_text("Delivered")
    expect(buyer_page.locator("#thread li.kind-system", has_text=DELIVERY)).to_be_visible()
    expect(buyer_page.get_by_role("button", name=re.compile(r"^Request a revision"))).to_be_visible()
    assert_same_document(buyer_page)

    # The buyer completes; the seller's page follows live.
    buyer_page.get_by_role("button", name="Accept and complete the order").click()
    expect(buyer_page.locator("#order-status")).to_have_text("Completed")
    expect(buyer_page.locator("#order-timeline")).to_contain_text("Completed")
    expect(buyer_page.get_by_role("button", name="Post review")).to_be_visible()
    expect(seller_page.locator("#order-status")).to_have_text("Completed")
    expect(seller_page.locator("#order-timeline .timeline-item")).to_have_count(4)
    expect(seller_page.locator("#order-timeline")).to_contain_text("Completed")
    expect(seller_page.get_by_role("button", name="Post review")).to_be_visible()
    expect(seller_page.locator("#thread li.kind-system", has_text="is complete")).to_be_visible()
    assert_same_document(seller_page)
    expect_live(buyer_page)
    screenshot(buyer_page, "order-page.png")

    assert buyer_page.js_errors == [], buyer_page.js_errors
    assert seller_page.js_errors == [], seller_page.js_errors
