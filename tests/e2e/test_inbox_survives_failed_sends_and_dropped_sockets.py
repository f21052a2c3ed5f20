"""A failed send keeps the text; a dropped socket catches up with each missed message once."""

import uuid

import httpx
import pytest
from django.conf import settings
from playwright.sync_api import expect

from inbox import services
from tests.e2e.support import expect_live, log_in, open_page, thread_bodies
from tests.factories import bearer_headers

pytestmark = [pytest.mark.needs_browser, pytest.mark.django_db(transaction=True)]

QUESTION = "Hi! Could you translate my menu into French?"

# Test-only instrumentation (the page exposes nothing): keep a handle on each WebSocket the page
# opens, so the test can drop them, and point new ones at a path of the same server that no
# socket is served on while "offline" (same origin: the Content-Security-Policy allows only that).
SOCKET_CONTROL = """
(() => {
  const NativeWebSocket = window.WebSocket;
  const sockets = new Set();
  let blocked = false;
  window.__e2eSockets = {
    drop() {
      blocked = true;
      for (const socket of sockets) socket.close();
    },
    restore() {
      blocked = false;
    },
  };
  window.WebSocket = class extends NativeWebSocket {
    constructor(url, protocols) {
      super(blocked ? url.replace("/ws/events/", "/ws/offline/") : url, protocols);
      sockets.add(this);
      this.addEventListener("close", () => sockets.delete(this));
    }
  };
})();
"""


def test_composer_keeps_the_text_when_sending_fails(daphne_servers, launch_browser, buyer, seller):
    conversation, _message, _created = services.start_conversation(
        sender=buyer, recipient_username="seller", body=QUESTION
    )
    limit = settings.MESSAGE_MAX_LENGTH
    server = daphne_servers.start()
    browser = launch_browser()
    page = open_page(browser, server)
    log_in(page, "buyer")
    page.goto(f"/inbox/{conversation.pk}/")
    expect_live(page)
    composer = page.get_by_label("Message Sam Seller")
    error = page.locator("#composer-error")
    expect(error).to_be_hidden()

    # Refused by the server (too long; set by script, past the textarea's maxlength).
    too_long = "x" * (limit + 1)
    composer.evaluate("(textarea, text) => { textarea.value = text; }", too_long)
    page.get_by_role("button", name="Send").click()
    expect(error).to_be_visible()
    expect(error).to_contain_text(f"at most {limit} characters")
    expect(composer).to_have_value(too_long)
    assert thread_bodies(page) == [QUESTION]

    # The network is gone: the text stays, and Send works again once it is back.
    shorter = "Bonjour! The menu has 40 dishes."
    composer.fill(shorter)
    page.context.set_offline(True)
    composer.press("Enter")
    expect(error).to_contain_text("connection dropped")
    expect(composer).to_have_value(shorter)
    page.context.set_offline(False)
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#thread li.message .bubble")).to_have_text([QUESTION, shorter])
    expect(composer).to_have_value("")
    expect(error).to_be_hidden()
    assert page.js_errors == [], page.js_errors


def test_messages_sent_while_the_socket_was_down_appear_once_in_order(
    daphne_servers, launch_browser, buyer, seller
):
    conversation, _message, _created = services.start_conversation(
        sender=buyer, recipient_username="seller", body=QUESTION
    )
    seller_api_headers = {"Authorization": bearer_headers(seller)["HTTP_AUTHORIZATION"]}
    server = daphne_servers.start()
    seller_api = httpx.Client(base_url=server, headers=seller_api_headers, timeout=10)

    def seller_sends(body: str) -> None:
        response = seller_api.post(
            f"/api/v1/conversations/{conversation.pk}/messages",
            json={"body": body, "client_id": str(uuid.uuid4())},
        )
        assert response.status_code == 201, response.text

    browser = launch_browser()
    page = open_page(browser, server)
    page.context.add_init_script(SOCKET_CONTROL)
    log_in(page, "buyer")
    page.goto(f"/inbox/{conversation.pk}/")
    expect_live(page)
    thread = page.locator("#thread li.message .bubble")

    seller_sends("Sure, send it over.")
    expect(thread).to_have_text([QUESTION, "Sure, send it over."])

    # The connection drops; the seller keeps writing.
    # Close the socket first: once offline, Chromium cannot finish the closing handshake and
    # reports the close only after its handshake timeout.
    page.evaluate("window.__e2eSockets.drop()")
    expect(page.locator("#connection-state")).to_have_text("Reconnecting…")
    page.context.set_offline(True)
    missed = ["How many pages?", "Any dish names to keep in English?", "I can start tomorrow."]
    for body in missed:
        seller_sends(body)
    assert thread_bodies(page) == [QUESTION, "Sure, send it over."]

    # Back online: the page reconnects and fills the gap, each message once, in order.
    page.context.set_offline(False)
    page.evaluate("window.__e2eSockets.restore()")
    expect_live(page)
    expect(thread).to_have_text([QUESTION, "Sure, send it over.", *missed])

    # And it is live again afterwards.
    seller_sends("Deal?")
    expect(thread).to_have_text([QUESTION, "Sure, send it over.", *missed, "Deal?"])
    row = page.locator(f'.conversation-row[data-conversation-id="{conversation.pk}"]')
    expect(row).to_contain_text("Deal?")
    expect(row.locator(".unread-badge")).to_have_count(0)
    assert page.js_errors == [], page.js_errors
    seller_api.close()
