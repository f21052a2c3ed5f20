"""The pages about gigs, requests, offers, calls and orders, as a signed-in browser uses them:
who may see what (a stranger gets 404), forms that keep what was typed beside their errors,
the buttons of the cards in a thread, the order's steps by status, and the inbox's panel."""

import json
import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox.models import Message
from inbox.services import get_or_create_conversation, send_message
from marketplace.errors import InvalidInput
from orders import services
from orders.models import BuyerRequest, Call, CustomOffer, Gig, Order, OrderEvent, Review
from tests.helpers import logged_events

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
JSON = {"HTTP_ACCEPT": "application/json"}
HTMX = {"HTTP_HX_REQUEST": "true"}


# --- helpers -------------------------------------------------------------------------------


def browser(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def html_of(response, status: int = 200) -> str:
    assert response.status_code == status, response.content[:800]
    return response.content.decode()


def message_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'data-message-id="(\d+)"', html)]


def error_beside(html: str, field_id: str) -> str:
    """The error shown under a field (id="<field>-error"), as text."""
    match = re.search(rf'id="{re.escape(field_id)}-error"[^>]*>(.*?)</div>', html, re.S)
    assert match, f"no error beside {field_id}"
    return match.group(1).strip()


def value_of(html: str, field_id: str) -> str:
    """What an input or a textarea shows."""
    textarea = re.search(rf'<textarea id="{re.escape(field_id)}"[^>]*>(.*?)</textarea>', html, re.S)
    if textarea:
        return textarea.group(1)
    tag = re.search(rf'<input id="{re.escape(field_id)}"[^>]*>', html, re.S)
    assert tag, f"no field {field_id}"
    value = re.search(r'value="([^"]*)"', tag.group(0))
    return value.group(1) if value else ""


def json_error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == code, body
    return body["detail"]


@pytest.fixture
def conversation(buyer, seller):
    return get_or_create_conversation(user=buyer, other_user=seller)


@pytest.fixture
def gig(seller):
    return services.create_gig(
        seller=seller,
        title="I will design your logo",
        description="A hand-drawn logo.",
        price=120,
        delivery_days=5,
        revisions=2,
    )


@pytest.fixture
def offer(seller, conversation):
    return services.create_offer(
        seller=seller,
        conversation=conversation,
        title="Bakery logo",
        description="Three concepts, vector files",
        price=150,
        delivery_days=4,
        revisions=1,
    )


@pytest.fixture
def order(buyer, offer):
    return services.accept_offer(buyer=buyer, offer=offer)


def offer_message_html(user, offer) -> str:
    return html_of(browser(user).get(f"/inbox/messages/{offer.message_id}/"))


def deliver(order, seller):
    return services.deliver_order(seller=seller, order=order, message="Here are the files")


# --- access: strangers get 404, visitors are asked to log in -------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/orders/", "/orders/{number}/", "/orders/{number}/panel/", "/gigs/mine/", "/gigs/new/"],
)
def test_anonymous_visitors_are_sent_to_log_in(order, path):
    response = Client().get(path.format(number=order.number))

    assert response.status_code == 302
    assert response.url.startswith(settings.LOGIN_URL + "?next=/")


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/orders/{number}/"),
        ("get", "/orders/{number}/panel/"),
        ("get", "/orders/{number}/messages/"),
        ("post", "/orders/{number}/send/"),
        ("post", "/orders/{number}/requirements/"),
        ("post", "/orders/{number}/deliver/"),
        ("post", "/orders/{number}/revision/"),
        ("post", "/orders/{number}/complete/"),
        ("post", "/orders/{number}/cancel/"),
        ("post", "/orders/{number}/review/"),
        ("post", "/offers/{offer}/accept/"),
        ("post", "/offers/{offer}/decline/"),
        ("post", "/offers/{offer}/withdraw/"),
        ("post", "/conversations/{conversation}/offers/"),
        ("post", "/conversations/{conversation}/calls/"),
        ("post", "/conversations/{conversation}/consultations/"),
    ],
)
def test_a_stranger_gets_404_and_changes_nothing(stranger, order, method, path):
    before = (Order.objects.get().status, Message.objects.count(), CustomOffer.objects.count())
    url = path.format(number=order.number, offer=order.offer_id, conversation=order.conversation_id)
    payload = {"body": "hi", "message": "x", "reason": "x", "requirements": "x", "rating": 5, "price": 10}

    response = getattr(browser(stranger), method)(url, payload if method == "post" else None)

    assert response.status_code == 404
    assert (Order.objects.get().status, Message.objects.count(), CustomOffer.objects.count()) == before


def test_a_stranger_cannot_book_a_consultation(stranger, seller, conversation):
    call = services.offer_consultation(
        seller=seller,
        conversation=conversation,
        starts_at=timezone.now() + timedelta(days=2),
        duration_minutes=30,
    )

    assert browser(stranger).post(f"/calls/{call.pk}/book/").status_code == 404
    assert Call.objects.get().status == Call.Status.OFFERED


@pytest.mark.parametrize("number", ["NOPE", "x" * 30, "FO%00ABC"])
def test_an_unknown_order_number_is_404(buyer, order, number):
    assert browser(buyer).get(f"/orders/{number}/").status_code == 404


def test_the_order_number_is_found_in_any_case(buyer, order):
    assert browser(buyer).get(f"/orders/{order.number.lower()}/").status_code == 200


# --- header and home -----------------------------------------------------------------------------


def test_the_header_links_to_orders_and_a_sellers_gigs(buyer, seller, gig):
    buyer_page = html_of(browser(buyer).get("/"))
    seller_page = html_of(browser(seller).get("/"))

    assert 'href="/orders/"' in buyer_page
    assert 'href="/gigs/mine/"' not in buyer_page
    assert 'href="/orders/"' in seller_page and 'href="/gigs/mine/"' in seller_page
    assert "I will design your logo" in buyer_page


# --- gigs ----------------------------------------------------------------------------------------


def test_a_seller_publishes_a_gig_from_my_gigs(seller):
    client = browser(seller)
    assert 'href="/gigs/new/"' in html_of(client.get("/gigs/mine/"))

    response = client.post(
        "/gigs/new/",
        {
            "title": "Logo design",
            "description": "Hand drawn",
            "price": "99.50",
            "delivery_days": "3",
            "revisions": "2",
        },
    )

    assert response.status_code == 302 and response.url == "/gigs/mine/"
    gig = Gig.objects.get()
    assert (gig.seller, gig.title, str(gig.price), gig.delivery_days, gig.revisions) == (
        seller, "Logo design", "99.50", 3, 2
    )  # fmt: skip
    mine = html_of(client.get("/gigs/mine/"))
    assert "Logo design" in mine and "$99.50" in mine and f'href="/gigs/{gig.pk}/edit/"' in mine
    assert "Logo design" in html_of(Client().get("/"))


@pytest.mark.parametrize(
    "field, value, field_id, says",
    [
        ("title", "   ", "gig-title", "The title cannot be empty."),
        ("price", "-5", "gig-price", "between $5"),
        ("price", "1e9", "gig-price", "between $5"),
        ("price", "cheap", "gig-price", "must be a number"),
        ("delivery_days", "0", "gig-delivery-days", "1 to 365 days"),
        ("delivery_days", "10000", "gig-delivery-days", "1 to 365 days"),
        ("revisions", "-1", "gig-revisions", "0 to 20"),
    ],
)
def test_a_gig_with_bad_input_shows_the_error_beside_the_field_and_keeps_the_text(
    seller, field, value, field_id, says
):
    typed = {"title": "Logo <b>design</b>", "description": "My words, kept", "price": "120"}
    typed |= {"delivery_days": "3", "revisions": "1", field: value}

    page = html_of(browser(seller).post("/gigs/new/", typed), status=422)

    assert says in error_beside(page, field_id)
    assert value_of(page, "gig-description") == "My words, kept"
    if field != "title":
        assert value_of(page, "gig-title") == "Logo &lt;b&gt;design&lt;/b&gt;"
    assert value_of(page, field_id) == value.replace("<", "&lt;")
    assert not Gig.objects.exists()


def test_every_bad_field_of_a_gig_is_shown_at_once(seller):
    page = html_of(
        browser(seller).post(
            "/gigs/new/",
            {"title": "", "description": "", "price": "0", "delivery_days": "0", "revisions": "99"},
        ),
        status=422,
    )

    for field_id in ("gig-title", "gig-description", "gig-price", "gig-delivery-days", "gig-revisions"):
        assert error_beside(page, field_id)


def test_a_buyer_is_told_how_to_publish_and_cannot(buyer):
    client = browser(buyer)
    assert "Only sellers publish gigs" in html_of(client.get("/gigs/new/"))

    response = client.post(
        "/gigs/new/",
        {"title": "T", "description": "D", "price": "50", "delivery_days": "2", "revisions": "1"},
    )

    assert response.status_code == 403
    assert "Only sellers publish gigs" in response.content.decode()
    assert not Gig.objects.exists()


def test_a_seller_edits_a_gig_with_errors_kept_then_saved(seller, gig):
    client = browser(seller)
    form = html_of(client.get(f"/gigs/{gig.pk}/edit/"))
    assert value_of(form, "gig-title") == "I will design your logo"
    assert value_of(form, "gig-price") == "120.00"

    bad = client.post(
        f"/gigs/{gig.pk}/edit/",
        {
            "title": "New title",
            "description": "New words",
            "price": "2",
            "delivery_days": "4",
            "revisions": "3",
        },
    )
    page = html_of(bad, status=422)
    assert "between $5" in error_beside(page, "gig-price")
    assert value_of(page, "gig-title") == "New title"
    gig.refresh_from_db()
    assert gig.title == "I will design your logo"

    good = client.post(
        f"/gigs/{gig.pk}/edit/",
        {
            "title": "New title",
            "description": "New words",
            "price": "200",
            "delivery_days": "4",
            "revisions": "3",
        },
    )
    assert good.status_code == 302
    gig.refresh_from_db()
    assert (gig.title, gig.price, gig.delivery_days, gig.revisions) == ("New title", 200, 4, 3)


def test_a_seller_deactivates_a_gig_and_shows_it_again(seller, gig):
    client = browser(seller)

    client.post(f"/gigs/{gig.pk}/active/", {"active": "0"})

    gig.refresh_from_db()
    assert gig.is_active is False
    assert Client().get(f"/gigs/{gig.pk}/").status_code == 404
    assert "I will design your logo" not in html_of(Client().get("/"))
    assert "Deactivated" in html_of(client.get("/gigs/mine/"))

    client.post(f"/gigs/{gig.pk}/active/", {"active": "1"})
    gig.refresh_from_db()
    assert gig.is_active is True


def test_someone_elses_gig_cannot_be_edited(buyer, user_factory, gig):
    rival = user_factory("rival", seller=True)
    for user in (buyer, rival):
        client = browser(user)
        assert client.get(f"/gigs/{gig.pk}/edit/").status_code == 404
        assert client.post(f"/gigs/{gig.pk}/edit/", {"title": "Mine now"}).status_code == 404
        assert client.post(f"/gigs/{gig.pk}/active/", {"active": "0"}).status_code == 404
    gig.refresh_from_db()
    assert (gig.title, gig.is_active) == ("I will design your logo", True)


# --- requests ------------------------------------------------------------------------------------


def in_days(days: int) -> str:
    return (timezone.localdate() + timedelta(days=days)).isoformat()


def test_the_gig_page_and_profile_offer_a_request_form_to_buyers_only(buyer, seller, gig):
    for path in (f"/gigs/{gig.pk}/", "/u/seller/"):
        page = html_of(browser(buyer).get(path))
        assert "Send a request" in page and 'name="budget"' in page and 'name="deadline"' in page
        assert "Send a request" not in html_of(browser(seller).get(path))
        assert "Send a request" not in html_of(Client().get(path))
    assert "Send a request" not in html_of(browser(seller).get("/u/buyer/"))


def test_a_buyer_sends_a_request_from_the_gig_page_and_lands_in_the_conversation(buyer, seller, gig):
    client = browser(buyer)

    response = client.post(
        f"/gigs/{gig.pk}/", {"description": f"A logo {XSS}", "budget": "300", "deadline": in_days(20)}
    )

    sent = BuyerRequest.objects.get()
    assert (sent.buyer, sent.seller, str(sent.budget)) == (buyer, seller, "300.00")
    assert response.status_code == 302
    assert response.url == f"/inbox/{sent.conversation_id}/"
    page = html_of(client.get(response.url))
    assert "request-card" in page and "$300.00" in page
    assert XSS_ESCAPED in page and XSS not in page
    assert "may not fit" not in page  # it fits: no hint
    seller_page = html_of(browser(seller).get(response.url))
    assert "What they need" in seller_page and "$300.00" in seller_page


def test_a_request_that_does_not_fit_shows_a_hint_once_with_sellers_that_fit(
    buyer, seller, gig, user_factory
):
    fits = []
    for number in range(4):
        other = user_factory(f"fit{number}", seller=True, display_name=f"Fit Seller {number}")
        fits.append(
            services.create_gig(
                seller=other,
                title=f"Quick logo {number}",
                description="d",
                price=20 + number,
                delivery_days=1,
            )
        )
    client = browser(buyer)

    response = client.post("/u/seller/", {"description": "A logo", "budget": "50", "deadline": in_days(2)})

    page = html_of(client.get(response.url))
    hint = page.split('id="thread-hint"', 1)[1].split("</aside>", 1)[0]
    assert "Your request may not fit Sam Seller" in hint
    assert "below Sam Seller&#x27;s lowest price ($120)" in hint
    assert "fastest delivery takes 5 days" in hint
    linked = re.findall(r'href="/gigs/(\d+)/"', hint)
    assert linked == [str(gig.pk) for gig in fits[:3]]  # the three cheapest that fit
    assert BuyerRequest.objects.count() == 1
    assert 'id="thread-hint"' not in html_of(client.get(response.url))  # shown once


@pytest.mark.parametrize(
    "field, value, field_id, says",
    [
        ("description", "  ", "request-description", "What you need cannot be empty."),
        ("budget", "abc", "request-budget", "The budget must be a number"),
        ("budget", "-10", "request-budget", "The budget must be between"),
        ("deadline", "soon", "request-deadline", "The deadline is a date"),
        ("deadline", "2001-01-01", "request-deadline", "after today"),
    ],
)
def test_a_request_with_bad_input_keeps_the_text_beside_the_error(buyer, gig, field, value, field_id, says):
    typed = {"description": "My brief, kept", "budget": "200", "deadline": in_days(10), field: value}

    page = html_of(browser(buyer).post(f"/gigs/{gig.pk}/", typed), status=422)

    assert says in error_beside(page, field_id)
    if field != "description":
        assert value_of(page, "request-description") == "My brief, kept"
    assert value_of(page, field_id) == value
    assert not BuyerRequest.objects.exists()


def test_a_visitor_posting_a_request_is_asked_to_log_in(gig):
    response = Client().post(
        f"/gigs/{gig.pk}/", {"description": "x", "budget": "100", "deadline": in_days(5)}
    )

    assert response.status_code == 302 and response.url.startswith(settings.LOGIN_URL)
    assert not BuyerRequest.objects.exists()


# --- the seller's tools in a thread --------------------------------------------------------------


def test_only_sellers_see_the_offer_and_call_tools(buyer, seller, conversation, gig):
    seller_page = html_of(browser(seller).get(f"/inbox/{conversation.pk}/"))
    buyer_page = html_of(browser(buyer).get(f"/inbox/{conversation.pk}/"))

    for tool in ("Create an offer", "Start call", "Offer a consultation"):
        assert tool in seller_page
        assert tool not in buyer_page
    assert f'<option value="{gig.pk}"' in seller_page  # "from one of my gigs"


def test_a_seller_sends_an_offer_from_a_gig_with_the_gigs_terms(buyer, seller, conversation, gig):
    response = browser(seller).post(
        f"/conversations/{conversation.pk}/offers/",
        {"gig": gig.pk, "description": "Three logo concepts", "expires_in_days": "5"},
        **HTMX,
    )

    fragment = html_of(response)
    offer = CustomOffer.objects.get()
    assert (offer.title, offer.price, offer.delivery_days, offer.revisions, offer.gig) == (
        "I will design your logo", 120, 5, 2, gig
    )  # fmt: skip
    assert 'id="offer-form"' in fragment and "<html" not in fragment
    assert json.loads(response["HX-Trigger"])["card-posted"]["message"].startswith("Offer")
    assert value_of(fragment, "offer-description") == ""  # a fresh form
    buyer_page = html_of(browser(buyer).get(f"/inbox/{conversation.pk}/"))
    assert "offer-card" in buyer_page and "Three logo concepts" in buyer_page


def test_a_stand_alone_offer_with_bad_terms_comes_back_with_errors_and_the_text(seller, conversation):
    typed = {"gig": "", "title": "Logo", "description": "My offer text", "price": "-5"}
    typed |= {"delivery_days": "10000", "revisions": "1", "expires_in_days": "90"}

    fragment = html_of(
        browser(seller).post(f"/conversations/{conversation.pk}/offers/", typed, **HTMX), status=422
    )

    assert "between $5" in error_beside(fragment, "offer-price")
    assert "1 to 365 days" in error_beside(fragment, "offer-delivery-days")
    assert "1 to 30 days" in error_beside(fragment, "offer-expiry")
    assert value_of(fragment, "offer-description") == "My offer text"
    assert value_of(fragment, "offer-title") == "Logo"
    assert "<html" not in fragment
    assert not CustomOffer.objects.exists()


def test_without_script_a_refused_offer_gets_a_page_of_its_own(seller, conversation):
    page = html_of(
        browser(seller).post(f"/conversations/{conversation.pk}/offers/", {"description": "", "price": "10"}),
        status=422,
    )

    assert "<html" in page and "cannot be empty" in error_beside(page, "offer-description")
    assert f'href="/inbox/{conversation.pk}/"' in page


def test_a_buyer_cannot_make_an_offer(buyer, conversation):
    fragment = html_of(
        browser(buyer).post(
            f"/conversations/{conversation.pk}/offers/",
            {"description": "x", "price": "50", "delivery_days": "2"},
            **HTMX,
        ),
        status=403,
    )

    assert "Only sellers make custom offers" in fragment
    assert not CustomOffer.objects.exists()


def test_another_sellers_gig_cannot_be_offered(seller, conversation, user_factory):
    rival = user_factory("rival", seller=True)
    rivals_gig = services.create_gig(seller=rival, title="R", description="R", price=50, delivery_days=2)

    fragment = html_of(
        browser(seller).post(
            f"/conversations/{conversation.pk}/offers/", {"gig": rivals_gig.pk, "description": "x"}, **HTMX
        ),
        status=422,
    )

    assert "Choose one of your gigs" in error_beside(fragment, "offer-gig")
    assert not CustomOffer.objects.exists()


def test_a_seller_starts_a_call_and_both_see_a_join_link(buyer, seller, conversation):
    response = browser(seller).post(f"/conversations/{conversation.pk}/calls/", **JSON)

    assert response.status_code == 200
    call = Call.objects.get()
    assert response.json()["message_id"] == call.message_id
    for user in (buyer, seller):
        card = offer_message_html(user, call)
        link = re.search(
            r'<a class="[^"]*" href="([^"]+)" target="_blank" rel="noopener">Join the call</a>', card
        )
        assert link and link.group(1) == call.url


def test_a_buyer_cannot_start_a_call(buyer, conversation):
    detail = json_error(
        browser(buyer).post(f"/conversations/{conversation.pk}/calls/", **JSON), 403, "not_a_seller"
    )

    assert "Only sellers" in detail
    assert not Call.objects.exists()


def test_a_consultation_shows_in_each_persons_time_zone_and_the_buyer_books_it(buyer, seller, conversation):
    tokyo = ZoneInfo("Asia/Tokyo")
    slot = (
        (timezone.now() + timedelta(days=3))
        .astimezone(tokyo)
        .replace(hour=18, minute=30, second=0, microsecond=0)
    )

    response = browser(seller).post(
        f"/conversations/{conversation.pk}/consultations/",
        {"starts_at": slot.strftime("%Y-%m-%dT%H:%M"), "duration_minutes": "45"},
        **HTMX,
    )

    assert response.status_code == 200
    call = Call.objects.get()
    assert call.starts_at == slot and call.duration_minutes == 45
    in_paris = slot.astimezone(ZoneInfo("Europe/Paris"))
    buyer_card = offer_message_html(buyer, call)
    assert in_paris.strftime("%H:%M") in buyer_card and "Europe/Paris" in buyer_card
    assert slot.strftime("%H:%M") in offer_message_html(seller, call)
    assert "Book" in buyer_card
    assert "Book" not in offer_message_html(seller, call)

    booked = browser(buyer).post(f"/calls/{call.pk}/book/", **JSON)
    assert booked.status_code == 200
    card = offer_message_html(buyer, call)
    assert "Booked" in card and "Join the call" in card and ">Book<" not in card
    again = browser(buyer).post(f"/calls/{call.pk}/book/", **JSON)
    assert "already booked" in json_error(again, 409, "already_booked")


def test_a_consultation_in_the_past_is_refused_beside_the_time(seller, conversation):
    fragment = html_of(
        browser(seller).post(
            f"/conversations/{conversation.pk}/consultations/",
            {"starts_at": "2001-01-01T10:00", "duration_minutes": "30"},
            **HTMX,
        ),
        status=422,
    )

    assert "in the future" in error_beside(fragment, "consultation-starts-at")
    assert value_of(fragment, "consultation-starts-at") == "2001-01-01T10:00"
    assert not Call.objects.exists()


# --- the offer card and its buttons ----------------------------------------------------------


def test_the_offer_card_shows_its_terms_and_the_right_buttons_to_each_side(buyer, seller, offer):
    buyer_card = offer_message_html(buyer, offer)
    seller_card = offer_message_html(seller, offer)

    for card in (buyer_card, seller_card):
        assert "Bakery logo" in card and "Three concepts, vector files" in card
        assert "$150.00" in card and "4 days" in card and "Revisions" in card and "Expires" in card
        assert "Pending" in card
    assert f'action="/offers/{offer.pk}/accept/"' in buyer_card
    assert f'action="/offers/{offer.pk}/decline/"' in buyer_card
    assert "/withdraw/" not in buyer_card
    assert f'action="/offers/{offer.pk}/withdraw/"' in seller_card
    assert "/accept/" not in seller_card and "/decline/" not in seller_card
    assert 'data-action="edit"' not in seller_card  # cards are not edited by hand


def test_accepting_twice_makes_one_order_and_the_second_click_says_already_accepted(buyer, seller, offer):
    client = browser(buyer)

    first = client.post(f"/offers/{offer.pk}/accept/", **JSON)
    second = client.post(f"/offers/{offer.pk}/accept/", **JSON)

    order = Order.objects.get()
    assert first.status_code == 200
    assert first.json()["order_number"] == order.number
    assert first.json()["order_url"] == f"/orders/{order.number}/"
    assert "already accepted" in json_error(second, 409, "offer_accepted")
    card = offer_message_html(seller, offer)
    assert "Accepted" in card and f'href="/orders/{order.number}/"' in card and "/withdraw/" not in card
    assert "/accept/" not in offer_message_html(buyer, offer)


def test_without_script_a_second_accept_comes_back_with_already_accepted(buyer, offer):
    client = browser(buyer)
    next_url = f"/inbox/{offer.conversation_id}/"

    client.post(f"/offers/{offer.pk}/accept/", {"next": next_url})
    response = client.post(f"/offers/{offer.pk}/accept/", {"next": next_url}, follow=True)

    assert response.redirect_chain[-1][0] == next_url
    assert "This offer was already accepted." in response.content.decode()
    assert Order.objects.count() == 1


def test_a_card_change_is_announced_so_every_open_tab_re_renders_it(buyer, seller, offer):
    browser(buyer).post(f"/offers/{offer.pk}/decline/", **JSON)

    for user in (buyer, seller):
        updated = logged_events(user, event_type="message.updated")
        assert updated[-1]["message"]["id"] == offer.message_id
        assert updated[-1]["message"]["card"]["status"] == "declined"
    assert "Declined" in offer_message_html(seller, offer)


def test_the_seller_withdraws_and_the_buyer_can_no_longer_accept(buyer, seller, offer):
    assert browser(seller).post(f"/offers/{offer.pk}/withdraw/", **JSON).status_code == 200

    response = browser(buyer).post(f"/offers/{offer.pk}/accept/", **JSON)

    assert "already withdrawn" in json_error(response, 409, "offer_withdrawn")
    assert not Order.objects.exists()
    assert "Withdrawn" in offer_message_html(buyer, offer)


def test_the_seller_cannot_accept_their_own_offer_nor_the_buyer_withdraw_it(buyer, seller, offer):
    assert browser(seller).post(f"/offers/{offer.pk}/accept/", **JSON).status_code == 404
    assert browser(seller).post(f"/offers/{offer.pk}/accept/").status_code == 404
    assert browser(buyer).post(f"/offers/{offer.pk}/withdraw/", **JSON).status_code == 404
    assert CustomOffer.objects.get().status == CustomOffer.Status.PENDING


def test_an_expired_offer_shows_expired_without_buttons_and_cannot_be_accepted(buyer, offer):
    past = timezone.now() - timedelta(minutes=1)
    CustomOffer.objects.filter(pk=offer.pk).update(expires_at=past)
    message = Message.objects.get(pk=offer.message_id)
    Message.objects.filter(pk=message.pk).update(card={**message.card, "expires_at": past.isoformat()})

    card = offer_message_html(buyer, offer)
    response = browser(buyer).post(f"/offers/{offer.pk}/accept/", **JSON)

    assert "Expired" in card and "/accept/" not in card
    assert "expired" in json_error(response, 409, "offer_expired")
    assert not Order.objects.exists()


# --- order updates and order tags in the thread ---------------------------------------------------


def test_after_accepting_the_thread_shows_order_updates_and_tags_the_next_messages(buyer, seller, order):
    conversation = order.conversation
    reply, _ = send_message(sender=seller, conversation=conversation, body="Thanks! Starting now.")

    page = html_of(browser(buyer).get(f"/inbox/{conversation.pk}/"))

    system = page.split('class="message kind-system', 1)[1].split("</li>", 1)[0]
    assert "Order created" in system and f'href="/orders/{order.number}/"' in system
    item = page.split(f'id="m-{reply.pk}"', 1)[1].split("</li>", 1)[0]
    tag = re.search(r'<a class="order-tag" href="([^"]+)" title="([^"]+)"', item)
    assert tag and tag.groups() == (f"/orders/{order.number}/", f"Order #{order.number}")
    offer_item = page.split(f'id="m-{order.offer.message_id}"', 1)[1].split("</li>", 1)[0]
    assert "order-tag" not in offer_item  # written before the order existed


# --- the order page ------------------------------------------------------------------------------


def test_both_sides_see_the_order_page_with_status_terms_timeline_and_messages(buyer, seller, order):
    for user, other_name in ((buyer, "Sam Seller"), (seller, "Bella Buyer")):
        page = html_of(browser(user).get(f"/orders/{order.number}/"))
        assert f"Order #{order.number}" in page and "Bakery logo" in page
        assert 'id="order-status">In progress<' in page
        assert "$150.00" in page and "1 of 1" in page  # price, revisions left
        assert 'id="order-due"' in page
        timeline = page.split('id="order-timeline"', 1)[1].split("</ol>", 1)[0]
        assert "Order created" in timeline and "Payment recorded" in timeline
        assert other_name in page
        shown = message_ids(page)
        expected = list(Message.objects.filter(order=order).order_by("pk").values_list("pk", flat=True))
        assert shown == expected and len(shown) == 2


def test_the_order_page_shows_due_dates_in_the_viewers_time_zone(buyer, seller, order):
    buyer_page = html_of(browser(buyer).get(f"/orders/{order.number}/"))
    seller_page = html_of(browser(seller).get(f"/orders/{order.number}/"))

    due_in_paris = order.due_at.astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M")
    due_in_tokyo = order.due_at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M")
    assert due_in_paris in buyer_page.split('id="order-due"', 1)[1].split("</time>", 1)[0]
    assert due_in_tokyo in seller_page.split('id="order-due"', 1)[1].split("</time>", 1)[0]


def test_the_order_page_composer_writes_into_the_conversation_tagged_with_the_order(buyer, seller, order):
    shown_last = max(message_ids(html_of(browser(buyer).get(f"/orders/{order.number}/"))))
    earlier, _ = send_message(sender=seller, conversation=order.conversation, body="arrived meanwhile")

    response = browser(buyer).post(
        f"/orders/{order.number}/send/", {"body": f"About the colours {XSS}", "after": shown_last}
    )

    fragment = html_of(response)
    message = Message.objects.get(body=f"About the colours {XSS}")
    assert (message.conversation_id, message.order_id, message.sender) == (
        order.conversation_id,
        order.pk,
        buyer,
    )
    assert message_ids(fragment) == [earlier.pk, message.pk]  # the order's messages it had not shown
    assert XSS_ESCAPED in fragment and XSS not in fragment
    inbox_page = html_of(browser(seller).get(f"/inbox/{order.conversation_id}/"))
    assert message.pk in message_ids(inbox_page)


def test_a_message_from_the_order_page_of_a_finished_order_is_still_tagged_with_it(buyer, seller, order):
    deliver(order, seller)
    services.complete_order(buyer=buyer, order=order)

    browser(seller).post(f"/orders/{order.number}/send/", {"body": "Thanks for the order!"})

    assert Message.objects.get(body="Thanks for the order!").order_id == order.pk


def test_a_message_cannot_be_tagged_with_an_order_of_another_conversation(buyer, order, user_factory):
    other_seller = user_factory("other", seller=True)
    elsewhere = get_or_create_conversation(user=buyer, other_user=other_seller)

    with pytest.raises(InvalidInput):
        send_message(sender=buyer, conversation=elsewhere, body="hi", order=order)

    assert not Message.objects.filter(conversation=elsewhere).exists()


def test_an_empty_message_from_the_order_page_is_refused(buyer, order):
    response = browser(buyer).post(f"/orders/{order.number}/send/", {"body": "   "})

    assert "Write something" in json_error(response, 422, "empty_body")


def actions_of(html: str) -> set[str]:
    panel = html.split('id="order-actions"', 1)[1].split('class="order-timeline"', 1)[0]
    return set(re.findall(r'action="/orders/[A-Z0-9]+/([a-z]+)/"', panel))


def test_what_each_side_can_do_follows_the_status(buyer, seller, order):
    def actions(user):
        return actions_of(html_of(browser(user).get(f"/orders/{order.number}/")))

    assert actions(buyer) == {"requirements", "cancel"}
    assert actions(seller) == {"deliver", "cancel"}

    services.submit_requirements(buyer=buyer, order=order, requirements="Colours: green")
    assert actions(buyer) == {"cancel"}

    deliver(order, seller)
    assert actions(buyer) == {"complete", "revision"}
    assert actions(seller) == set()

    services.request_revision(buyer=buyer, order=order, reason="Greener")
    assert actions(buyer) == set()  # no cancelling once work was delivered
    assert actions(seller) == {"deliver"}

    deliver(order, seller)
    assert actions(buyer) == {"complete"}  # the one revision was used
    assert "All 1 revision used." in html_of(browser(buyer).get(f"/orders/{order.number}/"))

    services.complete_order(buyer=buyer, order=order)
    assert actions(buyer) == {"review"} and actions(seller) == {"review"}

    services.leave_review(author=buyer, order=order, rating=5, text="Great")
    assert actions(buyer) == set() and actions(seller) == {"review"}


def test_the_whole_order_from_its_page(buyer, seller, order):
    as_buyer, as_seller = browser(buyer), browser(seller)
    url = f"/orders/{order.number}/"

    assert as_buyer.post(url + "requirements/", {"requirements": "Name: Le Fournil"}).url == url
    assert as_seller.post(url + "deliver/", {"message": "Three concepts attached"}).status_code == 302
    assert as_buyer.post(url + "revision/", {"reason": "More green"}).status_code == 302
    assert as_seller.post(url + "deliver/", {"message": "Greener now"}).status_code == 302
    done = as_buyer.post(url + "complete/", follow=True)
    assert "Order complete" in done.content.decode()
    assert as_buyer.post(url + "review/", {"rating": "5", "text": "Lovely work"}).status_code == 302
    assert as_seller.post(url + "review/", {"rating": "4", "text": "Clear brief"}).status_code == 302

    order.refresh_from_db()
    assert (order.status, order.revisions_used) == (Order.Status.COMPLETED, 1)
    assert sorted(Review.objects.values_list("rating", flat=True)) == [4, 5]
    page = html_of(as_seller.get(url))
    timeline = page.split('id="order-timeline"', 1)[1].split("</ol>", 1)[0]
    for step in ("Requirements submitted", "Delivered", "Revision requested", "Completed", "Review left"):
        assert step in timeline
    assert "★★★★★" in timeline and "★★★★☆" in timeline
    assert 'id="order-status">Completed<' in page


def test_a_delivery_without_a_message_shows_the_error_and_keeps_nothing_else(seller, order):
    page = html_of(browser(seller).post(f"/orders/{order.number}/deliver/", {"message": "  "}), status=422)

    assert "The delivery message cannot be empty." in error_beside(page, "order-delivery-message")
    order.refresh_from_db()
    assert order.status == Order.Status.ACTIVE


def test_completing_before_delivery_is_refused_on_the_page_and_nothing_changes(buyer, order):
    page = html_of(browser(buyer).post(f"/orders/{order.number}/complete/"), status=409)

    assert "that step is not possible" in page
    order.refresh_from_db()
    assert order.status == Order.Status.ACTIVE
    assert not OrderEvent.objects.filter(kind=OrderEvent.Kind.COMPLETED).exists()


def test_the_wrong_side_is_told_so(buyer, seller, order):
    page = html_of(browser(buyer).post(f"/orders/{order.number}/deliver/", {"message": "done"}), status=403)
    assert "Only the seller can do this." in page

    response = browser(seller).post(f"/orders/{order.number}/complete/", **JSON)
    assert "Only the buyer" in json_error(response, 403, "wrong_side")


def test_requirements_twice_are_refused_with_the_text_kept(buyer, order):
    services.submit_requirements(buyer=buyer, order=order, requirements="First")

    page = html_of(
        browser(buyer).post(f"/orders/{order.number}/requirements/", {"requirements": "Second"}), status=409
    )

    assert "already submitted" in page
    order.refresh_from_db()
    assert order.requirements == "First"


def test_either_side_cancels_before_delivery_with_a_reason(buyer, seller, order):
    no_reason = html_of(browser(seller).post(f"/orders/{order.number}/cancel/", {"reason": ""}), status=422)
    assert "The reason cannot be empty." in error_beside(no_reason, "order-cancel-reason")

    response = browser(seller).post(f"/orders/{order.number}/cancel/", {"reason": "Ill, sorry"})

    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    page = html_of(browser(buyer).get(f"/orders/{order.number}/"))
    assert "This order was cancelled." in page and "Ill, sorry" in page


def test_cancelling_after_delivery_is_refused(buyer, seller, order):
    deliver(order, seller)
    services.request_revision(buyer=buyer, order=order, reason="Greener")

    page = html_of(
        browser(buyer).post(f"/orders/{order.number}/cancel/", {"reason": "changed my mind"}), status=409
    )

    assert "that step is not possible" in page
    order.refresh_from_db()
    assert order.status == Order.Status.REVISION_REQUESTED


@pytest.mark.parametrize("rating", ["0", "6", "", "five"])
def test_a_review_needs_one_to_five_stars_and_keeps_the_text(buyer, seller, order, rating):
    deliver(order, seller)
    services.complete_order(buyer=buyer, order=order)

    page = html_of(
        browser(buyer).post(f"/orders/{order.number}/review/", {"rating": rating, "text": "Kept words"}),
        status=422,
    )

    assert "A rating is 1 to 5 stars." in page
    assert ">Kept words</textarea>" in page
    assert not Review.objects.exists()


def test_the_order_panel_and_messages_fragments(buyer, seller, order):
    panel = html_of(browser(buyer).get(f"/orders/{order.number}/panel/"))
    assert 'id="order-panel"' in panel and "<html" not in panel

    first = Message.objects.filter(order=order).order_by("pk").first()
    fragment = html_of(browser(seller).get(f"/orders/{order.number}/messages/", {"after": first.pk}))
    assert message_ids(fragment) == list(
        Message.objects.filter(order=order, pk__gt=first.pk).order_by("pk").values_list("pk", flat=True)
    )


def test_the_order_page_costs_the_same_queries_with_few_and_many_messages(buyer, seller, order):
    client = browser(buyer)

    def grow(count):
        for number in range(count):
            send_message(
                sender=buyer if number % 2 else seller, conversation=order.conversation, body=f"m{number}"
            )

    def load():
        with CaptureQueriesContext(connection) as queries:
            html_of(client.get(f"/orders/{order.number}/"))
        return len(queries)

    grow(5)
    load()
    few = load()
    grow(60)
    services.submit_requirements(buyer=buyer, order=order, requirements="Green")
    deliver(order, seller)
    services.request_revision(buyer=buyer, order=order, reason="Greener")

    assert load() == few


# --- the orders list -----------------------------------------------------------------------------


def test_the_orders_list_has_buyer_and_seller_tabs_and_a_status_filter(buyer, seller, order, user_factory):
    other_buyer = user_factory("other", display_name="Otto Other")
    second = services.accept_offer(
        buyer=other_buyer,
        offer=services.create_offer(
            seller=seller,
            conversation=get_or_create_conversation(user=seller, other_user=other_buyer),
            description="Flyer",
            price=60,
            delivery_days=2,
        ),
    )
    deliver(second, seller)

    as_buyer = html_of(browser(buyer).get("/orders/"))
    assert order.number in as_buyer and second.number not in as_buyer

    as_seller = html_of(browser(seller).get("/orders/"))  # a seller starts on the seller tab
    assert order.number in as_seller and second.number in as_seller
    assert html_of(browser(seller).get("/orders/", {"role": "buyer"})).count("order-row") == 0

    delivered = html_of(browser(seller).get("/orders/", {"status": "delivered"}))
    assert second.number in delivered and order.number not in delivered
    open_orders = html_of(browser(seller).get("/orders/", {"role": "seller", "status": "open"}))
    assert second.number in open_orders and order.number in open_orders


def test_an_unknown_status_filter_says_so(buyer, order):
    page = html_of(browser(buyer).get("/orders/", {"status": "lost"}), status=422)

    assert "status is open or one of" in page


# --- the other person's panel in the inbox ------------------------------------------------------


def test_the_panel_lists_the_order_history_between_the_two(buyer, seller, order, user_factory):
    stranger_seller = user_factory("someone", seller=True)
    services.accept_offer(
        buyer=buyer,
        offer=services.create_offer(
            seller=stranger_seller,
            conversation=get_or_create_conversation(user=buyer, other_user=stranger_seller),
            description="Unrelated",
            price=40,
            delivery_days=1,
        ),
    )

    page = html_of(browser(buyer).get(f"/inbox/{order.conversation_id}/"))

    history = page.split('id="order-history"', 1)[1].split("</section>", 1)[0]
    assert re.findall(r'href="/orders/([A-Z0-9]+)/"', history) == [order.number]
    assert "Bakery logo" in history and "You ordered" in history and "In progress" in history
    seller_history = html_of(browser(seller).get(f"/inbox/{order.conversation_id}/")).split(
        'id="order-history"', 1
    )[1]
    assert "They ordered" in seller_history.split("</section>", 1)[0]


def test_the_panel_history_fragment_is_for_the_two_only(buyer, stranger, order):
    fragment = html_of(browser(buyer).get(f"/inbox/{order.conversation_id}/orders/"))

    assert f'href="/orders/{order.number}/"' in fragment and "<html" not in fragment
    assert browser(stranger).get(f"/inbox/{order.conversation_id}/orders/").status_code == 404


def test_the_panel_shows_top_buyer_for_a_buyer_who_qualifies(settings, buyer, seller, conversation, order):
    settings.TOP_BUYER_MIN_COMPLETED_ORDERS = 1
    settings.TOP_BUYER_MIN_SPEND = 100
    seller_view = browser(seller)
    assert "Top buyer" not in html_of(seller_view.get(f"/inbox/{conversation.pk}/"))

    deliver(order, seller)
    services.complete_order(buyer=buyer, order=order)

    assert "Top buyer" in html_of(seller_view.get(f"/inbox/{conversation.pk}/"))
    assert "Top buyer" not in html_of(browser(buyer).get(f"/inbox/{conversation.pk}/"))  # a seller


def test_the_conversation_page_costs_the_same_queries_with_more_orders(settings, buyer, seller, conversation):
    client = browser(seller)

    def make_orders(count):
        for _ in range(count):
            offer = services.create_offer(
                seller=seller, conversation=conversation, description="More", price=50, delivery_days=1
            )
            order = services.accept_offer(buyer=buyer, offer=offer)
            deliver(order, seller)
            services.complete_order(buyer=buyer, order=order)

    def load():
        with CaptureQueriesContext(connection) as queries:
            html_of(client.get(f"/inbox/{conversation.pk}/"))
        return len(queries)

    make_orders(1)
    load()
    few = load()
    make_orders(12)

    assert load() == few


def test_deadlines_are_dates_in_the_request_card(buyer, seller, gig):
    deadline = date.today() + timedelta(days=30)
    services.send_request(buyer=buyer, seller=seller, description="Brief", budget=500, deadline=deadline)
    message = Message.objects.get(kind=Message.Kind.REQUEST)

    card = html_of(browser(seller).get(f"/inbox/messages/{message.pk}/"))

    assert deadline.strftime("%b %-d, %Y") in card and "$500.00" in card
