"""A buyer organises the inbox (star, label, archive, name search), replies to a specific
message, and edits and deletes their own messages while the seller watches live."""

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from inbox import services
from tests.e2e.support import PHONE, expect_live, log_in, open_page

pytestmark = [pytest.mark.needs_browser, pytest.mark.django_db(transaction=True)]

QUESTION = "Hi Sam, I need a logo for my bakery."
STYLE = "Sure! What style do you like?"
ANSWER = "Rustic and warm, with a wheat ear."
EDITED = "Rustic, warm and hand-drawn, with a wheat ear."
OOPS = "Oops, this was meant for someone else."


def open_menu(page: Page, menu: str) -> None:
    page.locator(f"{menu} > summary").click()
    expect(page.locator(f"{menu}[open]")).to_have_count(1)


def act(page: Page, button: str) -> None:
    """Choose an entry of the thread's Actions (…) menu."""
    open_menu(page, "#thread-actions")
    page.locator("#thread-actions").get_by_role("button", name=button, exact=True).click()


def choose_filter(page: Page, name: str) -> None:
    open_menu(page, "#filter-menu")
    page.locator("#filter-nav").get_by_role("link", name=re.compile(rf"^{re.escape(name)} \d+$")).click()


def test_buyer_files_replies_edits_and_searches(daphne_servers, launch_browser, buyer, seller, stranger):
    conversation, _, _ = services.start_conversation(sender=buyer, recipient_username="seller", body=QUESTION)
    style, _ = services.send_message(sender=seller, conversation=conversation, body=STYLE)
    services.start_conversation(sender=stranger, recipient_username="buyer", body="Hello from Stan")
    server = daphne_servers.start()
    search_exists = httpx.get(f"{server}/inbox/search/", follow_redirects=False).status_code != 404
    browser = launch_browser()
    buyer_page = open_page(browser, server)
    seller_page = open_page(browser, server)
    log_in(seller_page, "seller")
    seller_page.goto(f"/inbox/{conversation.pk}/")
    expect_live(seller_page)

    # --- The magnifier narrows the list by the other person's name. ---
    log_in(buyer_page, "buyer")
    expect_live(buyer_page)
    rows = buyer_page.locator(".conversation-row")
    expect(rows).to_have_count(2)
    buyer_page.get_by_label("Find a conversation by name or username").fill("stan")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Stan Stranger")
    expect(buyer_page).to_have_url(re.compile(r"/inbox/\?q=stan$"))
    buyer_page.get_by_label("Find a conversation by name or username").fill("")
    expect(rows).to_have_count(2)

    # --- Star the conversation from its Actions menu; the Starred filter lists it. ---
    buyer_page.locator(f'.conversation-row[data-conversation-id="{conversation.pk}"]').click()
    expect(buyer_page).to_have_url(re.compile(rf"/inbox/{conversation.pk}/$"))
    expect_live(buyer_page)
    act(buyer_page, "Star")
    expect(buyer_page.locator("#inbox-notice")).to_contain_text("Starred.")
    expect(buyer_page.locator("#thread-star")).to_be_visible()
    row = buyer_page.locator(f'.conversation-row[data-conversation-id="{conversation.pk}"]')
    expect(row.locator(".row-star")).to_be_visible()
    choose_filter(buyer_page, "Starred")
    expect(buyer_page).to_have_url(re.compile(rf"/inbox/{conversation.pk}/\?filter=starred$"))
    expect(rows).to_have_count(1)
    expect(row).to_be_visible()
    expect(buyer_page.locator("#filter-menu > summary")).to_contain_text("Starred")

    # --- Make a label, apply it, filter by it. ---
    buyer_page.goto("/inbox/labels/")
    buyer_page.get_by_label("Name", exact=True).fill("Bakery")
    buyer_page.get_by_label("Colour", exact=True).fill("#2563eb")
    buyer_page.get_by_role("button", name="Create label").click()
    expect(buyer_page.locator(".flash")).to_contain_text("Label “Bakery” created.")
    buyer_page.goto(f"/inbox/{conversation.pk}/")
    expect_live(buyer_page)
    open_menu(buyer_page, "#thread-actions")
    buyer_page.get_by_label("Label to apply or remove").select_option(label="Bakery")
    buyer_page.locator("#thread-actions").get_by_role("button", name="Apply label").click()
    expect(buyer_page.locator("#thread-labels")).to_have_text("Bakery")
    expect(row.locator(".label-chip")).to_have_text("Bakery")
    choose_filter(buyer_page, "Bakery")
    expect(buyer_page).to_have_url(re.compile(rf"/inbox/{conversation.pk}/\?label=\d+$"))
    expect(rows).to_have_count(1)
    expect(row).to_be_visible()

    # --- Reply to the seller's question; the seller sees the quote and it leads to the original. ---
    buyer_page.locator(f"#m-{style.pk}").get_by_role("button", name="Reply").click()
    expect(buyer_page.locator("#reply-bar")).to_have_text(
        re.compile(rf"Replying to Sam Seller: {re.escape(STYLE)}")
    )
    composer = buyer_page.get_by_label("Message Sam Seller")
    expect(composer).to_be_focused()
    composer.fill(ANSWER)
    composer.press("Enter")
    mine = buyer_page.locator("#thread li.message.mine").last
    expect(mine.locator(".bubble")).to_have_text(ANSWER)
    expect(buyer_page.locator("#reply-bar")).to_be_hidden()
    answer_id = int(mine.get_attribute("data-message-id"))

    sellers_copy = seller_page.locator(f"#m-{answer_id}")
    expect(sellers_copy.locator(".bubble")).to_have_text(ANSWER)
    expect(sellers_copy.locator(".quote")).to_contain_text("Sam Seller")
    expect(sellers_copy.locator(".quote")).to_contain_text(STYLE)
    sellers_copy.locator(".quote").click()
    expect(seller_page.locator(f"#m-{style.pk}")).to_have_class(re.compile(r"\bflash\b"))
    expect(seller_page.locator(f"#m-{style.pk}")).to_be_focused()
    expect(seller_page).to_have_url(re.compile(rf"/inbox/{conversation.pk}/$"))  # no navigation

    # --- Edit it: the seller sees the new text live, marked "edited". ---
    mine.get_by_role("button", name="Edit").click()
    editor = buyer_page.get_by_label("Edit your message")
    expect(editor).to_have_value(ANSWER)
    editor.fill(EDITED)
    mine.get_by_role("button", name="Save").click()
    expect(buyer_page.locator(f"#m-{answer_id} .bubble")).to_have_text(EDITED)
    expect(buyer_page.locator(f"#m-{answer_id} .edited")).to_have_text("edited")
    expect(sellers_copy.locator(".bubble")).to_have_text(EDITED)
    expect(sellers_copy.locator(".edited")).to_have_text("edited")

    # --- Delete another one: the seller sees the placeholder, never the text. ---
    composer.fill(OOPS)
    composer.press("Enter")
    oops = buyer_page.locator("#thread li.message.mine").last
    expect(oops.locator(".bubble")).to_have_text(OOPS)
    oops_id = int(oops.get_attribute("data-message-id"))
    expect(seller_page.locator(f"#m-{oops_id} .bubble")).to_have_text(OOPS)
    buyer_page.locator(f"#m-{oops_id}").get_by_role("button", name="Delete").click()
    buyer_page.locator(f"#m-{oops_id}").get_by_role("button", name="Yes, delete").click()
    expect(buyer_page.locator(f"#m-{oops_id} .bubble")).to_have_text("This message was deleted")
    expect(seller_page.locator(f"#m-{oops_id} .bubble")).to_have_text("This message was deleted")
    seller_row = seller_page.locator(f'.conversation-row[data-conversation-id="{conversation.pk}"]')
    expect(seller_row.locator(".row-preview")).to_have_text("Message deleted")
    assert OOPS not in seller_page.content()

    # --- Archive it: gone from All conversations, there under Archived. ---
    choose_filter(buyer_page, "All conversations")
    expect(rows).to_have_count(2)
    act(buyer_page, "Archive")
    expect(buyer_page.locator("#inbox-notice")).to_contain_text("Archived.")
    expect(rows).to_have_count(1)
    expect(row).to_have_count(0)
    choose_filter(buyer_page, "Archived")
    expect(buyer_page).to_have_url(re.compile(rf"/inbox/{conversation.pk}/\?filter=archived$"))
    expect(rows).to_have_count(1)
    expect(row).to_be_visible()
    open_menu(buyer_page, "#thread-actions")
    expect(buyer_page.locator("#thread-actions").get_by_role("button", name="Move to inbox")).to_be_visible()
    buyer_page.keyboard.press("Escape")

    # --- Full-text search over the messages (when that page is there). ---
    if search_exists:
        buyer_page.get_by_label("Search the text of your messages").fill("hand-drawn")
        buyer_page.get_by_label("Search the text of your messages").press("Enter")
        expect(buyer_page).to_have_url(re.compile(r"/inbox/search/\?q=hand-drawn$"))
        hit = buyer_page.locator(f'.search-hit[data-message-id="{answer_id}"] a')
        expect(hit).to_be_visible()
        hit.click()
        expect(buyer_page).to_have_url(
            re.compile(rf"/inbox/{conversation.pk}/\?message={answer_id}#m-{answer_id}$")
        )
        expect(buyer_page.locator(f"#m-{answer_id} .bubble")).to_have_text(EDITED)

    assert buyer_page.js_errors == [], buyer_page.js_errors
    assert seller_page.js_errors == [], seller_page.js_errors


def test_the_draft_follows_the_buyer_and_the_enter_key_is_their_choice(
    daphne_servers, launch_browser, buyer, seller
):
    conversation, _, _ = services.start_conversation(sender=buyer, recipient_username="seller", body=QUESTION)
    server = daphne_servers.start()
    browser = launch_browser()
    laptop = open_page(browser, server)
    log_in(laptop, "buyer")
    laptop.goto(f"/inbox/{conversation.pk}/")
    expect_live(laptop)
    composer = laptop.get_by_label("Message Sam Seller")

    # "Enter adds a new line": Enter breaks the line, and the choice is saved.
    laptop.get_by_label("Enter key").select_option(label="Enter adds a new line")
    expect(laptop.locator("#inbox-notice")).to_contain_text("Enter now adds a new line")
    expect(laptop.locator("#enter-hint")).to_have_text("Shift+Enter sends")
    # The draft is saved on the server shortly after typing stops.
    with laptop.expect_response(lambda r: r.url.endswith(f"/inbox/{conversation.pk}/draft/")) as saved:
        composer.press_sequentially("First line")
        composer.press("Enter")
        composer.press_sequentially("second line")
    assert saved.value.status == 204
    expect(composer).to_have_value("First line\nsecond line")
    expect(laptop.locator("#thread li.message")).to_have_count(1)

    # On another device: the same draft, the same Enter key; Shift+Enter sends.
    phone = open_page(browser, server, viewport=PHONE, is_mobile=True, has_touch=True)
    log_in(phone, "buyer")
    phone.goto(f"/inbox/{conversation.pk}/")
    expect_live(phone)
    phones_composer = phone.get_by_label("Message Sam Seller")
    expect(phones_composer).to_have_value("First line\nsecond line")
    expect(phone.get_by_label("Enter key")).to_have_value("0")
    phones_composer.press("Shift+Enter")
    sent = phone.locator("#thread li.message.mine .bubble").last
    expect(sent).to_have_text("First linesecond line")  # textContent: the line break is a <br>
    assert sent.inner_text() == "First line\nsecond line"
    expect(phones_composer).to_have_value("")

    # Filing from one device shows on the other, live: the star, and a new label to choose.
    act(laptop, "Star")
    expect(phone.locator("#thread-star")).to_be_visible()
    expect(phone.locator('#thread-actions button[value="star"]')).to_have_attribute("hidden", "")
    laptop.goto("/inbox/labels/")
    laptop.get_by_label("Name", exact=True).fill("Rush")
    laptop.get_by_role("button", name="Create label").click()
    expect(phone.locator("#thread-label option")).to_have_text(["Follow-up", "Rush"])

    # Sent: the draft is gone everywhere.
    laptop.goto(f"/inbox/{conversation.pk}/")
    expect(laptop.get_by_label("Message Sam Seller")).to_have_value("")
    expect(laptop.get_by_label("Enter key")).to_have_value("0")
    assert laptop.js_errors == [] and phone.js_errors == [], laptop.js_errors + phone.js_errors
