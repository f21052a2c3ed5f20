"""The inbox pages and the small endpoints the page's script calls, as a signed-in browser uses them."""

import re
import uuid

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from inbox.models import Conversation, Event, Membership, Message
from inbox.services import get_or_create_conversation, send_message, start_conversation
from tests.helpers import listen, received

XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


# --- helpers -------------------------------------------------------------------------------


def browser(user=None, **kwargs) -> Client:
    client = Client(**kwargs)
    if user is not None:
        client.force_login(user)
    return client


def html_of(response) -> str:
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def message_ids(html: str) -> list[int]:
    """The messages a page or fragment shows, in the order it shows them."""
    return [int(found) for found in re.findall(r'data-message-id="(\d+)"', html)]


def unread_badges(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'aria-label="(\d+) unread"', html)]


def assert_json_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]


def stored() -> tuple:
    return (
        list(Message.objects.order_by("pk").values_list("pk", flat=True)),
        list(Membership.objects.order_by("pk").values_list("unread_count", flat=True)),
        Event.objects.count(),
    )


@pytest.fixture
def conversation(buyer, seller):
    conversation, _, _ = start_conversation(sender=buyer, recipient_username="seller", body="Hi Sam")
    return conversation


# --- signed out ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/inbox/", "/inbox/{id}/", "/inbox/{id}/messages/", "/inbox/conversations/", "/inbox/new/?to=seller"],
)
def test_anonymous_visitors_are_sent_to_log_in(conversation, path):
    response = Client().get(path.format(id=conversation.pk))

    assert response.status_code == 302
    assert response.url.startswith(settings.LOGIN_URL + "?next=/inbox/")


@pytest.mark.parametrize("action", ["send", "read", "typing"])
def test_anonymous_posts_change_nothing(conversation, action):
    before = stored()

    response = Client().post(f"/inbox/{conversation.pk}/{action}/", {"body": "hi"})

    assert response.status_code == 302
    assert response.url.startswith(settings.LOGIN_URL)
    assert stored() == before


# --- the inbox page ------------------------------------------------------------------------------


def test_the_list_shows_the_other_person_the_unread_badge_and_the_last_message(buyer, seller, conversation):
    send_message(sender=buyer, conversation=conversation, body="Are you free next week?")

    sellers_page = html_of(browser(seller).get("/inbox/"))
    buyers_page = html_of(browser(buyer).get("/inbox/"))

    assert "Bella Buyer" in sellers_page
    assert unread_badges(sellers_page) == [2]
    assert "Are you free next week?" in sellers_page
    assert "Sam Seller" in buyers_page
    assert unread_badges(buyers_page) == []
    assert "You: Are you free next week?" in buyers_page


def test_the_list_puts_the_latest_conversation_first(buyer, seller, stranger):
    start_conversation(sender=buyer, recipient_username="seller", body="older")
    start_conversation(sender=buyer, recipient_username="stranger", body="newer")

    page = html_of(browser(buyer).get("/inbox/"))

    assert page.index("Stan Stranger") < page.index("Sam Seller")


def test_an_empty_inbox_says_so(buyer):
    page = html_of(browser(buyer).get("/inbox/"))

    assert "No conversations yet" in page


def test_a_conversation_page_shows_the_thread_and_the_other_person(buyer, seller, conversation):
    reply, _ = send_message(sender=seller, conversation=conversation, body="Hello Bella, how can I help?")
    first = Message.objects.get(body="Hi Sam")

    page = html_of(browser(buyer).get(f"/inbox/{conversation.pk}/"))

    assert message_ids(page) == [first.pk, reply.pk]
    assert "Hello Bella, how can I help?" in page
    assert "Sam Seller" in page
    assert "@seller" in page
    assert "Asia/Tokyo" in page
    assert f'action="/inbox/{conversation.pk}/send/"' in page


@pytest.mark.parametrize("conversation_id", ["stranger", "unknown", "9223372036854775808", "9" * 30])
def test_a_conversation_page_is_404_for_anyone_else(buyer, stranger, conversation, conversation_id):
    conversation_id = {"stranger": conversation.pk, "unknown": conversation.pk + 1000}.get(
        conversation_id, conversation_id
    )

    response = browser(stranger).get(f"/inbox/{conversation_id}/")

    assert response.status_code == 404
    assert b"Hi Sam" not in response.content


def test_user_text_is_escaped_everywhere_it_is_shown(buyer, seller, user_factory):
    mallory = user_factory("mallory", display_name='<img src=x onerror="alert(2)">')
    conversation, _, _ = start_conversation(sender=buyer, recipient_username="seller", body=XSS)
    mallorys, _, _ = start_conversation(sender=mallory, recipient_username="seller", body="hi")
    fragment = send_message(sender=buyer, conversation=conversation, body=f"again {XSS}")[0]
    seller_browser = browser(seller)

    for page in (
        html_of(seller_browser.get("/inbox/")),
        html_of(seller_browser.get(f"/inbox/{conversation.pk}/")),
        html_of(seller_browser.get(f"/inbox/{conversation.pk}/messages/", {"after": fragment.pk - 1})),
        html_of(seller_browser.get("/inbox/conversations/")),
    ):
        assert XSS not in page
        assert XSS_ESCAPED in page
    mallory_page = html_of(seller_browser.get(f"/inbox/{mallorys.pk}/"))
    assert "<img src=x" not in mallory_page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in mallory_page


def test_links_in_messages_are_clickable_but_nothing_else_is_html(buyer, seller, conversation):
    send_message(
        sender=buyer, conversation=conversation, body='See https://example.com/brief <b onclick="x">now</b>'
    )

    page = html_of(browser(seller).get(f"/inbox/{conversation.pk}/"))

    assert '<a href="https://example.com/brief"' in page
    assert "<b onclick" not in page
    assert "&lt;b onclick=&quot;x&quot;&gt;now&lt;/b&gt;" in page


def test_the_conversation_list_fragment_marks_the_active_conversation(buyer, seller, conversation):
    fragment = html_of(browser(buyer).get("/inbox/conversations/", {"active": conversation.pk}))

    assert "Sam Seller" in fragment
    assert 'aria-current="page"' in fragment
    assert "<html" not in fragment


def test_the_conversation_page_costs_the_same_queries_at_10_and_200(buyer, seller, user_factory):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    seller_browser = browser(seller)

    def grow(numbers):
        for number in numbers:
            customer = user_factory(f"client{number:03d}")
            start_conversation(sender=customer, recipient_username="seller", body=f"request {number}")
            send_message(sender=buyer, conversation=conversation, body=f"message {number}")

    def load_page():
        with CaptureQueriesContext(connection) as context:
            page = html_of(seller_browser.get(f"/inbox/{conversation.pk}/"))
        return len(context.captured_queries), page

    grow(range(10))
    load_page()  # warm up the session
    queries_at_10, small = load_page()
    grow(range(10, 200))
    queries_at_200, large = load_page()

    assert (len(message_ids(small)), len(message_ids(large))) == (10, 50)
    assert "Client199" in large
    assert queries_at_10 == queries_at_200


# --- sending from the page -----------------------------------------------------------------------


def test_send_answers_with_the_new_message(buyer, seller, conversation):
    response = browser(seller).post(f"/inbox/{conversation.pk}/send/", {"body": "Sure, send me the brief."})

    fragment = html_of(response)
    message = Message.objects.get(body="Sure, send me the brief.")
    assert message_ids(fragment) == [message.pk]
    assert message.sender == seller
    assert Membership.objects.get(user=buyer).unread_count == 1


def test_send_with_after_catches_the_page_up_on_what_it_missed(buyer, seller, conversation):
    seen = Message.objects.get(body="Hi Sam")
    missed, _ = send_message(sender=seller, conversation=conversation, body="arrived while offline")

    fragment = html_of(
        browser(buyer).post(f"/inbox/{conversation.pk}/send/", {"body": "mine", "after": seen.pk})
    )

    mine = Message.objects.get(body="mine")
    assert message_ids(fragment) == [missed.pk, mine.pk]
    assert "arrived while offline" in fragment


def test_send_replayed_with_the_same_client_id_stores_one_message(buyer, seller, conversation):
    client_id = str(uuid.uuid4())
    buyer_browser = browser(buyer)

    first = buyer_browser.post(f"/inbox/{conversation.pk}/send/", {"body": "once", "client_id": client_id})
    again = buyer_browser.post(f"/inbox/{conversation.pk}/send/", {"body": "once", "client_id": client_id})

    message = Message.objects.get(client_id=client_id)
    assert message_ids(html_of(first)) == message_ids(html_of(again)) == [message.pk]
    assert Membership.objects.get(user=seller).unread_count == 2


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"body": ""}, "empty_body"),
        ({"body": "  \r\n "}, "empty_body"),
        ({}, "empty_body"),
        ({"body": "x" * (settings.MESSAGE_MAX_LENGTH + 1)}, "body_too_long"),
        ({"body": "nul \x00 byte"}, "invalid_body"),
    ],
)
def test_a_refused_send_answers_json_4xx_and_stores_nothing(buyer, conversation, form, code):
    before = stored()

    response = browser(buyer).post(f"/inbox/{conversation.pk}/send/", form)

    assert_json_error(response, 422, code)
    assert stored() == before


def test_an_unverified_user_cannot_send_from_the_page(user_factory, buyer):
    newcomer = user_factory("newcomer", seller=True, verified=False)
    conversation, _, _ = start_conversation(sender=buyer, recipient_username="newcomer", body="welcome")
    before = stored()

    response = browser(newcomer).post(f"/inbox/{conversation.pk}/send/", {"body": "thanks"})

    assert_json_error(response, 403, "email_unverified")
    assert stored() == before


def test_a_stranger_cannot_send_into_the_conversation(stranger, conversation):
    before = stored()

    response = browser(stranger).post(f"/inbox/{conversation.pk}/send/", {"body": "let me in"})

    assert response.status_code == 404
    assert stored() == before


@pytest.mark.parametrize("action", ["send", "read", "typing"])
def test_the_post_endpoints_refuse_get(buyer, conversation, action):
    response = browser(buyer).get(f"/inbox/{conversation.pk}/{action}/")

    assert response.status_code == 405


def test_a_post_without_csrf_token_is_refused(buyer, conversation):
    strict = browser(buyer, enforce_csrf_checks=True)
    before = stored()

    response = strict.post(f"/inbox/{conversation.pk}/send/", {"body": "forged"})

    assert response.status_code == 403
    assert stored() == before


def test_a_post_with_the_pages_csrf_token_is_accepted(buyer, conversation):
    strict = browser(buyer, enforce_csrf_checks=True)
    page = html_of(strict.get(f"/inbox/{conversation.pk}/"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    response = strict.post(f"/inbox/{conversation.pk}/send/", {"body": "real", "csrfmiddlewaretoken": token})

    assert response.status_code == 200
    assert Message.objects.filter(body="real").count() == 1


# --- loading messages ---------------------------------------------------------------------------


@pytest.fixture
def long_thread(buyer, seller, conversation) -> list[int]:
    """60 messages: more than the page's first 50."""
    ids = [Message.objects.get(conversation=conversation).pk]
    for number in range(59):
        sender = buyer if number % 3 else seller
        ids.append(send_message(sender=sender, conversation=conversation, body=f"message {number}")[0].pk)
    return ids


def test_the_page_shows_the_latest_50_and_loads_earlier_ones(buyer, conversation, long_thread):
    buyer_browser = browser(buyer)

    page = html_of(buyer_browser.get(f"/inbox/{conversation.pk}/"))
    assert message_ids(page) == long_thread[10:]
    before = re.search(r"\?before=([^\"&]+)", page).group(1)

    earlier = html_of(buyer_browser.get(f"/inbox/{conversation.pk}/messages/", {"before": before}))

    assert message_ids(earlier) == long_thread[:10]
    assert "?before=" not in earlier  # nothing further back


def test_messages_after_an_id_are_the_newer_ones_oldest_first(buyer, conversation, long_thread):
    fragment = html_of(browser(buyer).get(f"/inbox/{conversation.pk}/messages/", {"after": long_thread[54]}))

    assert message_ids(fragment) == long_thread[55:]


def test_messages_after_the_latest_is_empty(buyer, conversation, long_thread):
    fragment = html_of(browser(buyer).get(f"/inbox/{conversation.pk}/messages/", {"after": long_thread[-1]}))

    assert message_ids(fragment) == []


def test_messages_with_a_foreign_before_cursor_is_a_json_422(buyer, conversation):
    response = browser(buyer).get(f"/inbox/{conversation.pk}/messages/", {"before": "not-a-cursor"})

    assert_json_error(response, 422, "invalid_cursor")


def test_messages_are_404_for_a_stranger(stranger, conversation):
    response = browser(stranger).get(f"/inbox/{conversation.pk}/messages/", {"after": 0})

    assert response.status_code == 404
    assert b"Hi Sam" not in response.content


# --- read and typing -----------------------------------------------------------------------------


def test_read_clears_the_unread_badge(buyer, seller, conversation):
    last, _ = send_message(sender=buyer, conversation=conversation, body="second")
    seller_browser = browser(seller)

    response = seller_browser.post(f"/inbox/{conversation.pk}/read/")

    assert response.status_code == 200
    assert response.json() == {"unread_count": 0, "last_read_message_id": last.pk}
    assert unread_badges(html_of(seller_browser.get("/inbox/"))) == []


def test_read_up_to_a_message_leaves_the_rest_unread(buyer, seller, conversation):
    first = Message.objects.get(body="Hi Sam")
    send_message(sender=buyer, conversation=conversation, body="second")
    seller_browser = browser(seller)

    response = seller_browser.post(f"/inbox/{conversation.pk}/read/", {"up_to_message_id": first.pk})

    assert response.json() == {"unread_count": 1, "last_read_message_id": first.pk}
    assert unread_badges(html_of(seller_browser.get("/inbox/"))) == [1]


def test_read_is_404_for_a_stranger(stranger, conversation):
    before = stored()

    response = browser(stranger).post(f"/inbox/{conversation.pk}/read/")

    assert response.status_code == 404
    assert stored() == before


def test_typing_reaches_the_other_person(channel_layer, buyer, seller, conversation):
    sellers_tab = listen(channel_layer, seller)

    response = browser(buyer).post(f"/inbox/{conversation.pk}/typing/")

    assert response.status_code == 204
    assert [(e["type"], e["user"], e["conversation_id"]) for e in received(channel_layer, sellers_tab)] == [
        ("typing", "buyer", conversation.pk)
    ]


def test_a_stranger_typing_is_404_and_reaches_nobody(channel_layer, buyer, seller, stranger, conversation):
    tabs = [listen(channel_layer, buyer), listen(channel_layer, seller)]

    response = browser(stranger).post(f"/inbox/{conversation.pk}/typing/")

    assert response.status_code == 404
    assert [received(channel_layer, tab) for tab in tabs] == [[], []]


# --- writing to someone new ------------------------------------------------------------------------


def test_new_shows_a_form_addressed_to_the_seller(buyer, seller):
    page = html_of(browser(buyer).get("/inbox/new/", {"to": "seller", "body": "Is the logo gig available?"}))

    assert "Message Sam Seller" in page
    assert 'name="to" value="seller"' in page
    assert ">Is the logo gig available?</textarea>" in page


def test_new_goes_to_the_existing_conversation(buyer, conversation):
    response = browser(buyer).get("/inbox/new/", {"to": "seller"})

    assert response.status_code == 302
    assert response.url == f"/inbox/{conversation.pk}/"


def test_new_to_yourself_goes_back_to_the_inbox(buyer):
    response = browser(buyer).get("/inbox/new/", {"to": "buyer"})

    assert response.status_code == 302
    assert response.url == "/inbox/"


def test_posting_new_starts_the_conversation(buyer, seller):
    response = browser(buyer).post(
        "/inbox/new/", {"to": "seller", "body": "Hello!", "client_id": str(uuid.uuid4())}
    )

    conversation = Conversation.objects.get()
    assert response.status_code == 302
    assert response.url == f"/inbox/{conversation.pk}/"
    assert list(conversation.messages.values_list("body", "sender__username")) == [("Hello!", "buyer")]
    assert Membership.objects.get(user=seller).unread_count == 1


def test_posting_new_twice_with_the_same_client_id_sends_once(buyer, seller):
    buyer_browser, form = browser(buyer), {"to": "seller", "body": "Hello!", "client_id": str(uuid.uuid4())}

    first = buyer_browser.post("/inbox/new/", form)
    again = buyer_browser.post("/inbox/new/", form)

    assert first.url == again.url
    assert Message.objects.count() == 1


def test_posting_new_to_an_existing_conversation_adds_to_it(buyer, conversation):
    response = browser(buyer).post("/inbox/new/", {"to": "seller", "body": "One more thing"})

    assert response.url == f"/inbox/{conversation.pk}/"
    assert Conversation.objects.count() == 1
    assert list(conversation.messages.order_by("pk").values_list("body", flat=True)) == [
        "Hi Sam",
        "One more thing",
    ]


def test_posting_new_empty_shows_the_error_on_the_page(buyer, seller):
    response = browser(buyer).post("/inbox/new/", {"to": "seller", "body": "   "})

    assert response.status_code == 422
    page = response.content.decode()
    assert "Write something before sending." in page
    assert "Message Sam Seller" in page
    assert not Conversation.objects.exists()


def test_posting_new_too_long_keeps_the_text_and_the_client_id(buyer, seller):
    text, client_id = "x" * (settings.MESSAGE_MAX_LENGTH + 1), str(uuid.uuid4())

    response = browser(buyer).post("/inbox/new/", {"to": "seller", "body": text, "client_id": client_id})

    assert response.status_code == 422
    page = response.content.decode()
    assert f"A message is at most {settings.MESSAGE_MAX_LENGTH} characters" in page
    assert f">{text}</textarea>" in page
    assert f'name="client_id" value="{client_id}"' in page  # so the corrected retry stays idempotent
    assert not Conversation.objects.exists()


def test_posting_new_unverified_keeps_the_text_escaped(user_factory, seller):
    newcomer = user_factory("newcomer", verified=False)
    text = f"</textarea>{XSS}"

    response = browser(newcomer).post("/inbox/new/", {"to": "seller", "body": text})

    assert response.status_code == 403
    page = response.content.decode()
    assert "Confirm your email address before sending messages" in page
    assert XSS not in page
    assert f"&lt;/textarea&gt;{XSS_ESCAPED}</textarea>" in page
    assert not Message.objects.exists()


@pytest.mark.parametrize("query", [{"to": "nobody"}, {"to": "sel\x00ler"}, {}, {"to": ""}])
def test_new_to_an_unknown_user_is_404(buyer, query):
    buyer_browser = browser(buyer)

    assert buyer_browser.get("/inbox/new/", query).status_code == 404
    assert buyer_browser.post("/inbox/new/", {**query, "body": "hello?"}).status_code == 404
    assert not Message.objects.exists()


def test_new_to_a_closed_account_is_404(buyer, seller):
    seller.is_active = False
    seller.save(update_fields=["is_active"])

    response = browser(buyer).get("/inbox/new/", {"to": "seller"})

    assert response.status_code == 404
