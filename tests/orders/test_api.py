"""The orders API as a client sees it: gigs, requests, custom offers, orders and calls. Every
refusal is a JSON 4xx {"error", "detail"} that changes nothing, never a 5xx."""

import json
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox.models import Conversation, Membership, Message
from inbox.services import block_user, get_or_create_conversation
from orders import selectors
from orders import services as orders
from orders.models import BuyerRequest, Call, CustomOffer, Gig, Order, OrderEvent, Review
from tests.factories import bearer_headers, make_completed_order
from tests.helpers import logged_events

API = "/api/v1"
HUGE_ID = 10**30
USER_KEYS = {"id", "username", "display_name", "avatar_initials", "is_seller", "timezone"}
GIG_KEYS = {
    "id", "seller", "title", "description", "price", "delivery_days", "revisions", "is_active", "created_at",
}  # fmt: skip
OFFER_KEYS = {
    "id", "conversation_id", "message_id", "seller", "buyer", "gig_id", "title", "description", "price",
    "delivery_days", "revisions", "status", "expires_at", "created_at", "decided_at",
}  # fmt: skip
ORDER_KEYS = {
    "number", "title", "description", "status", "price", "delivery_days", "revisions_included",
    "revisions_used", "revisions_left", "buyer", "seller", "conversation_id", "gig_id", "offer_id",
    "requirements", "requirements_submitted_at", "due_at", "created_at", "delivered_at", "completed_at",
    "cancelled_at", "events", "reviews",
}  # fmt: skip
CALL_KEYS = {
    "id", "conversation_id", "message_id", "kind", "seller", "buyer", "url", "starts_at", "duration_minutes",
    "status", "booked_at", "created_at",
}  # fmt: skip


# --- helpers -------------------------------------------------------------------------------


class Api:
    """Django's test client with the user's bearer token (or none). Never a 5xx."""

    def __init__(self, user=None):
        self.client = Client()
        self.headers = bearer_headers(user) if user is not None else {}

    def _checked(self, response):
        assert response.status_code < 500, response.content
        return response

    def get(self, path, params=None):
        return self._checked(self.client.get(API + path, params or {}, **self.headers))

    def post(self, path, payload=None, *, raw: str | None = None):
        data = raw if raw is not None else ("" if payload is None else json.dumps(payload))
        return self._checked(
            self.client.post(API + path, data=data, content_type="application/json", **self.headers)
        )

    def patch(self, path, payload):
        return self._checked(
            self.client.patch(
                API + path, data=json.dumps(payload), content_type="application/json", **self.headers
            )
        )


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["detail"], str) and body["detail"]
    if code is not None:
        assert body["error"] == code, body
    return body


def parse_time(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def in_days(days: int) -> str:
    return (timezone.localdate() + timedelta(days=days)).isoformat()


def everything() -> dict:
    """Counts of what the orders API can create or change: a refusal leaves them all as they were."""
    return {
        "gigs": list(Gig.objects.order_by("pk").values()),
        "requests": BuyerRequest.objects.count(),
        "offers": list(CustomOffer.objects.order_by("pk").values("pk", "status")),
        "orders": list(Order.objects.order_by("pk").values("pk", "status", "requirements", "revisions_used")),
        "events": OrderEvent.objects.count(),
        "reviews": Review.objects.count(),
        "calls": list(Call.objects.order_by("pk").values("pk", "status")),
        "messages": Message.objects.count(),
        "conversations": Conversation.objects.count(),
    }


@pytest.fixture
def as_buyer(buyer):
    return Api(buyer)


@pytest.fixture
def as_seller(seller):
    return Api(seller)


@pytest.fixture
def as_stranger(stranger):
    return Api(stranger)


@pytest.fixture
def conversation(buyer, seller):
    return get_or_create_conversation(user=buyer, other_user=seller)


@pytest.fixture
def gig(seller):
    return orders.create_gig(
        seller=seller, title="A logo", description="A clean vector logo.", price="100", delivery_days=3
    )


@pytest.fixture
def offer(seller, conversation):
    return orders.create_offer(
        seller=seller, conversation=conversation, description="Logo, 3 concepts", price="120",
        delivery_days=4, revisions=2,
    )  # fmt: skip


@pytest.fixture
def order(buyer, offer):
    return orders.accept_offer(buyer=buyer, offer=offer)


def thread(api: Api, conversation_id: int) -> list[dict]:
    response = api.get(f"/conversations/{conversation_id}/messages", {"limit": 100})
    assert response.status_code == 200, response.content
    return response.json()["items"]


# --- authentication --------------------------------------------------------------------------

ENDPOINTS = [
    ("GET", "/gigs"),
    ("GET", "/gigs/1"),
    ("POST", "/gigs"),
    ("PATCH", "/gigs/1"),
    ("POST", "/requests"),
    ("POST", "/conversations/1/offers"),
    ("POST", "/offers/1/accept"),
    ("POST", "/offers/1/decline"),
    ("POST", "/offers/1/withdraw"),
    ("GET", "/orders"),
    ("GET", "/orders/FOAAAAAAAA"),
    ("POST", "/orders/FOAAAAAAAA/requirements"),
    ("POST", "/orders/FOAAAAAAAA/deliver"),
    ("POST", "/orders/FOAAAAAAAA/revision"),
    ("POST", "/orders/FOAAAAAAAA/complete"),
    ("POST", "/orders/FOAAAAAAAA/cancel"),
    ("POST", "/orders/FOAAAAAAAA/reviews"),
    ("POST", "/conversations/1/calls"),
    ("POST", "/calls/1/book"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_without_credentials_every_endpoint_answers_401(method, path):
    response = Client().generic(method, API + path, "{}", content_type="application/json")

    assert_error(response, 401, "unauthorized")


# --- gigs ------------------------------------------------------------------------------------


def test_a_seller_publishes_a_gig_and_everyone_sees_it(as_seller, as_buyer):
    response = as_seller.post(
        "/gigs",
        {"title": "A logo", "description": "Vector logo", "price": "120", "delivery_days": 3, "revisions": 2},
    )

    assert response.status_code == 201, response.content
    gig = response.json()
    assert set(gig) == GIG_KEYS
    assert set(gig["seller"]) == USER_KEYS
    assert gig["seller"]["username"] == "seller"
    assert gig["price"] == "120.00"
    assert (gig["delivery_days"], gig["revisions"], gig["is_active"]) == (3, 2, True)
    parse_time(gig["created_at"])
    assert as_buyer.get(f"/gigs/{gig['id']}").json() == gig
    assert as_buyer.get("/gigs").json() == {"items": [gig]}
    assert as_buyer.get("/gigs", {"seller": "SELLER"}).json() == {"items": [gig]}


def test_prices_may_be_numbers_with_cents(as_seller):
    response = as_seller.post(
        "/gigs", {"title": "Banner", "description": "A banner", "price": 99.5, "delivery_days": 2}
    )

    assert response.status_code == 201, response.content
    assert response.json()["price"] == "99.50"
    assert response.json()["revisions"] == 1


def test_the_gig_list_is_active_gigs_newest_first(seller, user_factory, as_buyer):
    other = user_factory("other", seller=True)
    first = orders.create_gig(seller=seller, title="First", description="d", price=10, delivery_days=1)
    second = orders.create_gig(seller=other, title="Second", description="d", price=10, delivery_days=1)
    hidden = orders.create_gig(seller=seller, title="Hidden", description="d", price=10, delivery_days=1)
    orders.update_gig(seller=seller, gig=hidden, is_active=False)

    listed = as_buyer.get("/gigs").json()["items"]
    of_seller = as_buyer.get("/gigs", {"seller": "seller"}).json()["items"]
    limited = as_buyer.get("/gigs", {"limit": 1}).json()["items"]

    assert [g["id"] for g in listed] == [second.pk, first.pk]
    assert [g["id"] for g in of_seller] == [first.pk]
    assert [g["id"] for g in limited] == [second.pk]
    assert_error(as_buyer.get(f"/gigs/{hidden.pk}"), 404, "not_found")


def test_gigs_of_an_unknown_seller_are_not_found(as_buyer):
    assert_error(as_buyer.get("/gigs", {"seller": "nobody"}), 404, "unknown_user")
    assert_error(as_buyer.get("/gigs", {"seller": "no\x00body"}), 404, "unknown_user")
    assert_error(as_buyer.get("/gigs", {"limit": 0}), 422, "invalid_input")


@pytest.mark.parametrize("gig_id", [0, 999999, HUGE_ID])
def test_a_gig_that_does_not_exist_is_not_found(as_buyer, gig_id):
    assert_error(as_buyer.get(f"/gigs/{gig_id}"), 404, "not_found")


def test_a_buyer_cannot_publish_gigs(as_buyer):
    response = as_buyer.post(
        "/gigs", {"title": "A logo", "description": "d", "price": "120", "delivery_days": 3}
    )

    assert_error(response, 403, "not_a_seller")
    assert not Gig.objects.exists()


GOOD_GIG = {
    "title": "A logo",
    "description": "Vector logo",
    "price": "120",
    "delivery_days": 3,
    "revisions": 1,
}


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"price": "-5"}, "invalid_price"),
        ({"price": -5}, "invalid_price"),
        ({"price": "0"}, "invalid_price"),
        ({"price": "4.99"}, "invalid_price"),
        ({"price": "50000.01"}, "invalid_price"),
        ({"price": "1e9"}, "invalid_price"),
        ({"price": 1e308}, "invalid_price"),
        ({"price": "NaN"}, "invalid_price"),
        ({"price": "Infinity"}, "invalid_price"),
        ({"price": "twelve"}, "invalid_price"),
        ({"price": None}, "invalid_input"),
        ({"delivery_days": 0}, "invalid_delivery_days"),
        ({"delivery_days": 10_000}, "invalid_delivery_days"),
        ({"delivery_days": -1}, "invalid_delivery_days"),
        ({"delivery_days": 10**30}, "invalid_delivery_days"),
        ({"delivery_days": 2.5}, "invalid_input"),
        ({"delivery_days": "soon"}, "invalid_input"),
        ({"revisions": 21}, "invalid_revisions"),
        ({"revisions": -1}, "invalid_revisions"),
        ({"title": "A\x00logo"}, "invalid_text"),
        ({"title": "   "}, "invalid_text"),
        ({"title": "x" * 121}, "invalid_text"),
        ({"description": "d" * 5001}, "invalid_text"),
        ({"description": "nul\x00"}, "invalid_text"),
    ],
)
def test_bad_gigs_are_refused(as_seller, change, code):
    response = as_seller.post("/gigs", {**GOOD_GIG, **change})

    assert_error(response, 422, code)
    assert not Gig.objects.exists()


def test_a_seller_changes_their_gig(as_seller, gig):
    response = as_seller.patch(
        f"/gigs/{gig.pk}",
        {
            "title": "A better logo",
            "price": "150.50",
            "delivery_days": 5,
            "revisions": 3,
            "description": "New",
        },
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["title"], body["price"], body["delivery_days"], body["revisions"], body["description"]) == (
        "A better logo", "150.50", 5, 3, "New",
    )  # fmt: skip
    gig.refresh_from_db()
    assert (gig.title, str(gig.price), gig.delivery_days) == ("A better logo", "150.50", 5)


def test_hiding_a_gig_takes_it_off_the_lists_and_showing_brings_it_back(as_seller, as_buyer, gig):
    hidden = as_seller.patch(f"/gigs/{gig.pk}", {"is_active": False})
    assert hidden.status_code == 200
    assert hidden.json()["is_active"] is False
    assert as_buyer.get("/gigs").json()["items"] == []
    assert_error(as_buyer.get(f"/gigs/{gig.pk}"), 404)

    shown = as_seller.patch(f"/gigs/{gig.pk}", {"is_active": True})
    assert shown.json()["is_active"] is True
    assert as_buyer.get(f"/gigs/{gig.pk}").status_code == 200


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"price": "-1"}, "invalid_price"),
        ({"delivery_days": 0}, "invalid_delivery_days"),
        ({"title": "nul\x00"}, "invalid_text"),
        ({"title": "ok", "delivery_days": 10_000}, "invalid_delivery_days"),
        ({"is_active": "maybe"}, "invalid_input"),
    ],
)
def test_bad_changes_to_a_gig_change_nothing(as_seller, gig, change, code):
    before = everything()

    assert_error(as_seller.patch(f"/gigs/{gig.pk}", change), 422, code)
    assert everything() == before


@pytest.mark.parametrize("gig_id", ["mine_of_other", 999999, HUGE_ID])
def test_someone_elses_gig_cannot_be_changed(user_factory, gig, as_buyer, gig_id):
    other = Api(user_factory("other", seller=True))
    before = everything()

    target = gig.pk if gig_id == "mine_of_other" else gig_id
    assert_error(other.patch(f"/gigs/{target}", {"title": "Mine now"}), 404, "not_found")
    assert_error(as_buyer.patch(f"/gigs/{target}", {"title": "Mine now"}), 404, "not_found")
    assert everything() == before


# --- requests --------------------------------------------------------------------------------


def test_a_request_that_fits_opens_the_conversation_with_a_request_card(
    buyer, seller, gig, as_buyer, as_seller
):
    response = as_buyer.post(
        "/requests",
        {"seller": "Seller", "description": "A logo for my bakery", "budget": "150", "deadline": in_days(10)},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"request", "conversation_id", "mismatches", "suggestions"}
    assert body["mismatches"] == [] and body["suggestions"] == []
    request = body["request"]
    assert set(request) == {
        "id", "buyer", "seller", "conversation_id", "message_id", "description", "budget", "deadline",
        "created_at",
    }  # fmt: skip
    assert (request["buyer"], request["seller"], request["budget"], request["deadline"]) == (
        "buyer", "seller", "150.00", in_days(10),
    )  # fmt: skip
    assert request["conversation_id"] == body["conversation_id"]
    card = thread(as_seller, body["conversation_id"])[0]
    assert card["id"] == request["message_id"]
    assert card["kind"] == "request"
    assert card["card"]["request_id"] == request["id"]
    assert card["card"]["budget"] == "150.00"
    assert Membership.objects.get(user=seller, conversation_id=body["conversation_id"]).has_request


def test_a_request_that_does_not_fit_names_why_and_suggests_sellers_that_fit(
    user_factory, seller, gig, as_buyer
):
    fitting = []
    for i in range(4):
        other = user_factory(f"fit{i}", seller=True)
        fitting.append(
            orders.create_gig(
                seller=other, title=f"Cheap {i}", description="d", price=20 + i, delivery_days=1
            )
        )
    too_dear = user_factory("dear", seller=True)
    orders.create_gig(seller=too_dear, title="Dear", description="d", price=500, delivery_days=1)

    response = as_buyer.post(
        "/requests", {"seller": "seller", "description": "A logo", "budget": 50, "deadline": in_days(1)}
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert len(body["mismatches"]) == 2
    assert "budget ($50) is below" in body["mismatches"][0]
    assert "fastest delivery takes 3 days" in body["mismatches"][1]
    assert [g["id"] for g in body["suggestions"]] == [g.pk for g in fitting[:3]]
    assert all(set(g) == GIG_KEYS for g in body["suggestions"])
    assert BuyerRequest.objects.count() == 1


def test_a_request_to_a_seller_without_gigs_says_so(seller, as_buyer):
    response = as_buyer.post(
        "/requests", {"seller": "seller", "description": "A logo", "budget": 50, "deadline": in_days(5)}
    )

    assert response.status_code == 201
    assert response.json()["mismatches"] == ["Sam Seller has no active gigs at the moment."]


GOOD_REQUEST = {"seller": "seller", "description": "A logo", "budget": "150", "deadline": "+10"}


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"seller": "nobody"}, 404, "unknown_user"),
        ({"seller": "sel\x00ler"}, 404, "unknown_user"),
        ({"seller": "x" * 151}, 422, "invalid_input"),
        ({"seller": "stranger"}, 422, "not_a_seller"),
        ({"seller": "buyer"}, 422, "invalid_request"),
        ({"budget": "-100"}, 422, "invalid_price"),
        ({"budget": "1e12"}, 422, "invalid_price"),
        ({"budget": "lots"}, 422, "invalid_price"),
        ({"deadline": "+0"}, 422, "invalid_deadline"),
        ({"deadline": "-3"}, 422, "invalid_deadline"),
        ({"deadline": "+400"}, 422, "invalid_deadline"),
        ({"deadline": "tomorrow"}, 422, "invalid_input"),
        ({"deadline": "2026-02-30"}, 422, "invalid_input"),
        ({"description": ""}, 422, "invalid_text"),
        ({"description": "nul\x00"}, 422, "invalid_text"),
        ({"description": "d" * 2001}, 422, "invalid_text"),
    ],
)
def test_bad_requests_are_refused(seller, stranger, gig, as_buyer, change, status, code):
    payload = {**GOOD_REQUEST, **change}
    if payload["deadline"][0] in "+-":
        payload["deadline"] = in_days(int(payload["deadline"]))
    before = everything()

    assert_error(as_buyer.post("/requests", payload), status, code)
    assert everything() == before


# --- custom offers ---------------------------------------------------------------------------


def test_an_offer_shows_as_a_card_and_accepting_it_starts_an_order(
    buyer, seller, conversation, as_buyer, as_seller
):
    sent = as_seller.post(
        f"/conversations/{conversation.pk}/offers",
        {
            "title": "Logo pack",
            "description": "3 concepts",
            "price": "120",
            "delivery_days": 4,
            "revisions": 2,
        },
    )

    assert sent.status_code == 201, sent.content
    offer = sent.json()
    assert set(offer) == OFFER_KEYS
    assert (offer["seller"], offer["buyer"], offer["status"], offer["price"]) == (
        "seller",
        "buyer",
        "pending",
        "120.00",
    )
    assert offer["conversation_id"] == conversation.pk
    assert offer["decided_at"] is None
    lifetime = parse_time(offer["expires_at"]) - parse_time(offer["created_at"])
    assert abs(lifetime - timedelta(days=7)) < timedelta(seconds=1)
    [card] = thread(as_buyer, conversation.pk)
    assert card["id"] == offer["message_id"]
    assert card["kind"] == "offer"
    assert card["sender"] == "seller"
    assert card["order"] is None
    assert card["card"]["offer_id"] == offer["id"]
    assert card["card"]["status"] == "pending"
    assert Membership.objects.get(user=buyer, conversation=conversation).has_custom_offer

    accepted = as_buyer.post(f"/offers/{offer['id']}/accept")

    assert accepted.status_code == 201, accepted.content
    order = accepted.json()
    assert set(order) == ORDER_KEYS
    assert order["status"] == "active"
    assert (order["title"], order["price"], order["delivery_days"]) == ("Logo pack", "120.00", 4)
    assert (order["revisions_included"], order["revisions_used"], order["revisions_left"]) == (2, 0, 2)
    assert order["buyer"]["username"] == "buyer" and set(order["buyer"]) == USER_KEYS
    assert order["seller"]["username"] == "seller"
    assert order["offer_id"] == offer["id"]
    assert order["conversation_id"] == conversation.pk
    assert [e["kind"] for e in order["events"]] == ["created", "payment"]
    assert order["events"][1]["data"] == {"amount": "120.00", "placeholder": True}
    assert order["events"][0]["actor"] == "buyer"
    assert parse_time(order["due_at"]) - parse_time(order["created_at"]) == timedelta(days=4)
    assert order["reviews"] == []

    messages = {m["id"]: m for m in thread(as_seller, conversation.pk)}
    assert messages[offer["message_id"]]["card"]["status"] == "accepted"
    assert messages[offer["message_id"]]["card"]["order_number"] == order["number"]
    for person in (buyer, seller):  # both open tabs were told the card changed
        [updated] = [
            e for e in logged_events(person, event_type="message.updated") if e["message"]["kind"] == "offer"
        ]
        assert updated["message"]["card"]["status"] == "accepted"
    system = [m for m in messages.values() if m["kind"] == "system"]
    assert len(system) == 2
    assert all(m["order"]["number"] == order["number"] for m in system)

    from_buyer = as_buyer.post(f"/conversations/{conversation.pk}/messages", {"body": "Thanks! Files soon."})
    from_seller = as_seller.post(f"/conversations/{conversation.pk}/messages", {"body": "Great."})
    assert from_buyer.json()["order"]["number"] == order["number"]
    assert from_seller.json()["order"]["number"] == order["number"]
    assert thread(as_buyer, conversation.pk)[0]["order"]["number"] == order["number"]


def test_an_offer_from_a_gig_takes_its_terms(gig, conversation, as_seller):
    sent = as_seller.post(
        f"/conversations/{conversation.pk}/offers", {"gig_id": gig.pk, "description": "As discussed"}
    )

    assert sent.status_code == 201, sent.content
    offer = sent.json()
    assert (offer["gig_id"], offer["title"], offer["price"], offer["delivery_days"], offer["revisions"]) == (
        gig.pk, "A logo", "100.00", 3, 1,
    )  # fmt: skip


def test_an_offer_from_someone_elses_gig_is_refused(user_factory, conversation, as_seller):
    other = user_factory("other", seller=True)
    theirs = orders.create_gig(seller=other, title="Theirs", description="d", price=10, delivery_days=1)
    before = everything()

    for gig_id in (theirs.pk, 999999, HUGE_ID):
        response = as_seller.post(
            f"/conversations/{conversation.pk}/offers", {"gig_id": gig_id, "description": "Mine now"}
        )
        assert_error(response, 404, "not_found")
    assert everything() == before


GOOD_OFFER = {"description": "Logo", "price": "120", "delivery_days": 4, "revisions": 2, "expires_in_days": 7}


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"price": "-120"}, "invalid_price"),
        ({"price": "0"}, "invalid_price"),
        ({"price": "9999999"}, "invalid_price"),
        ({"price": "1e400"}, "invalid_price"),
        ({"price": None}, "invalid_offer"),
        ({"delivery_days": 0}, "invalid_delivery_days"),
        ({"delivery_days": 10_000}, "invalid_delivery_days"),
        ({"delivery_days": None}, "invalid_offer"),
        ({"revisions": 100}, "invalid_revisions"),
        ({"expires_in_days": 0}, "invalid_expiry"),
        ({"expires_in_days": 31}, "invalid_expiry"),
        ({"description": "nul\x00"}, "invalid_text"),
        ({"description": " "}, "invalid_text"),
        ({"title": "t\x00"}, "invalid_text"),
        ({"title": "t" * 121}, "invalid_text"),
        ({"delivery_days": "a week"}, "invalid_input"),
    ],
)
def test_bad_offers_are_refused(conversation, as_seller, change, code):
    before = everything()

    response = as_seller.post(f"/conversations/{conversation.pk}/offers", {**GOOD_OFFER, **change})

    assert_error(response, 422, code)
    assert everything() == before


def test_only_sellers_make_offers_and_only_in_their_conversations(
    conversation, as_buyer, as_stranger, user_factory
):
    other_seller = Api(user_factory("other", seller=True))
    before = everything()

    assert_error(as_buyer.post(f"/conversations/{conversation.pk}/offers", GOOD_OFFER), 403, "not_a_seller")
    assert_error(as_stranger.post(f"/conversations/{conversation.pk}/offers", GOOD_OFFER), 404, "not_found")
    assert_error(other_seller.post(f"/conversations/{conversation.pk}/offers", GOOD_OFFER), 404, "not_found")
    assert_error(other_seller.post(f"/conversations/{HUGE_ID}/offers", GOOD_OFFER), 404, "not_found")
    assert everything() == before


def test_a_blocked_seller_cannot_send_offers_or_start_calls(buyer, seller, as_seller):
    order = make_completed_order(buyer, seller)
    block_user(blocker=buyer, blocked=seller)
    before = everything()

    offer = as_seller.post(f"/conversations/{order.conversation_id}/offers", GOOD_OFFER)
    call = as_seller.post(f"/conversations/{order.conversation_id}/calls", {"kind": "call"})

    assert_error(offer, 403, "blocked_by_recipient")
    assert_error(call, 403, "blocked_by_recipient")
    assert everything() == before


def test_an_offer_is_accepted_once(buyer, offer, as_buyer):
    assert as_buyer.post(f"/offers/{offer.pk}/accept").status_code == 201
    before = everything()

    assert_error(as_buyer.post(f"/offers/{offer.pk}/accept"), 409, "offer_accepted")
    assert_error(as_buyer.post(f"/offers/{offer.pk}/decline"), 409, "offer_accepted")
    assert everything() == before
    assert Order.objects.count() == 1


def test_an_expired_offer_cannot_be_accepted(offer, as_buyer):
    CustomOffer.objects.filter(pk=offer.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    before = everything()

    body = assert_error(as_buyer.post(f"/offers/{offer.pk}/accept"), 409, "offer_expired")

    assert "expired" in body["detail"]
    assert everything() == before


def test_a_withdrawn_offer_cannot_be_accepted(offer, as_buyer, as_seller):
    withdrawn = as_seller.post(f"/offers/{offer.pk}/withdraw")
    assert withdrawn.status_code == 200, withdrawn.content
    assert withdrawn.json()["status"] == "withdrawn"
    before = everything()

    assert_error(as_buyer.post(f"/offers/{offer.pk}/accept"), 409, "offer_withdrawn")
    assert everything() == before


def test_the_buyer_declines_and_the_card_says_so(offer, conversation, as_buyer, as_seller):
    response = as_buyer.post(f"/offers/{offer.pk}/decline")

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == OFFER_KEYS
    assert body["status"] == "declined"
    parse_time(body["decided_at"])
    [card] = thread(as_seller, conversation.pk)
    assert card["card"]["status"] == "declined"
    assert_error(as_seller.post(f"/offers/{offer.pk}/withdraw"), 409, "offer_declined")
    assert not Order.objects.exists()


def test_someone_elses_offer_is_not_found(offer, as_buyer, as_seller, as_stranger):
    before = everything()

    for action in ("accept", "decline", "withdraw"):
        assert_error(as_stranger.post(f"/offers/{offer.pk}/{action}"), 404, "not_found")
        assert_error(as_buyer.post(f"/offers/{HUGE_ID}/{action}"), 404, "not_found")
        assert_error(as_buyer.post(f"/offers/0/{action}"), 404, "not_found")
    # Each side does only its own part: the seller does not accept for the buyer, nor the reverse.
    assert_error(as_seller.post(f"/offers/{offer.pk}/accept"), 404, "not_found")
    assert_error(as_seller.post(f"/offers/{offer.pk}/decline"), 404, "not_found")
    assert_error(as_buyer.post(f"/offers/{offer.pk}/withdraw"), 404, "not_found")
    assert everything() == before


# --- orders ----------------------------------------------------------------------------------


def test_an_order_goes_from_requirements_to_reviews(order, as_buyer, as_seller):
    url = f"/orders/{order.number}"

    requirements = as_buyer.post(f"{url}/requirements", {"requirements": "Bakery, warm colours"})
    assert requirements.status_code == 200, requirements.content
    assert requirements.json()["requirements"] == "Bakery, warm colours"
    parse_time(requirements.json()["requirements_submitted_at"])

    delivered = as_seller.post(f"{url}/deliver", {"message": "First version attached"})
    assert delivered.status_code == 200, delivered.content
    assert delivered.json()["status"] == "delivered"
    parse_time(delivered.json()["delivered_at"])

    revision = as_buyer.post(f"{url}/revision", {"reason": "Bigger letters"})
    assert revision.json()["status"] == "revision_requested"
    assert (revision.json()["revisions_used"], revision.json()["revisions_left"]) == (1, 1)

    assert as_seller.post(f"{url}/deliver", {"message": "Second version"}).json()["status"] == "delivered"
    completed = as_buyer.post(f"{url}/complete")
    assert completed.status_code == 200, completed.content
    assert completed.json()["status"] == "completed"
    parse_time(completed.json()["completed_at"])

    review = as_buyer.post(f"{url}/reviews", {"rating": 5, "text": "Lovely work"})
    assert review.status_code == 201, review.content
    assert review.json()["rating"] == 5
    assert (review.json()["author"], review.json()["subject"], review.json()["order_number"]) == (
        "buyer", "seller", order.number,
    )  # fmt: skip
    assert as_seller.post(f"{url}/reviews", {"rating": 4}).status_code == 201

    detail = as_buyer.get(url)
    assert detail.status_code == 200
    body = detail.json()
    assert set(body) == ORDER_KEYS | {"messages"}
    assert [e["kind"] for e in body["events"]] == [
        "created", "payment", "requirements_submitted", "delivered", "revision_requested", "delivered",
        "completed", "review", "review",
    ]  # fmt: skip
    assert [e["actor"] for e in body["events"]][2:5] == ["buyer", "seller", "buyer"]
    assert [(r["author"], r["rating"], r["text"]) for r in body["reviews"]] == [
        ("buyer", 5, "Lovely work"), ("seller", 4, ""),
    ]  # fmt: skip
    assert [m["id"] for m in body["messages"]] == [e["message_id"] for e in body["events"]]
    assert all(m["order"]["number"] == order.number for m in body["messages"])
    assert "Bigger letters" in body["messages"][4]["body"]


def test_the_order_page_lists_the_messages_about_the_order(order, conversation, as_buyer, as_seller):
    as_buyer.post(f"/conversations/{conversation.pk}/messages", {"body": "About the order"})

    body = as_seller.get(f"/orders/{order.number.lower()}").json()

    assert body["number"] == order.number
    assert [m["kind"] for m in body["messages"]] == ["system", "system", "text"]
    assert body["messages"][-1]["body"] == "About the order"


def test_either_side_cancels_before_delivery(order, as_seller, as_buyer):
    response = as_seller.post(f"/orders/{order.number}/cancel", {"reason": "Out sick"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "cancelled"
    parse_time(body["cancelled_at"])
    assert body["events"][-1]["kind"] == "cancelled"
    assert body["events"][-1]["data"] == {"reason": "Out sick", "by": "seller"}
    assert_error(
        as_buyer.post(f"/orders/{order.number}/cancel", {"reason": "again"}), 409, "invalid_transition"
    )


@pytest.mark.parametrize(
    ("who", "path", "payload", "status", "code"),
    [
        ("buyer", "complete", None, 409, "invalid_transition"),
        ("buyer", "revision", {"reason": "More"}, 409, "invalid_transition"),
        ("buyer", "reviews", {"rating": 5}, 409, "invalid_transition"),
        ("seller", "reviews", {"rating": 5}, 409, "invalid_transition"),
        ("buyer", "deliver", {"message": "I deliver to myself"}, 403, "wrong_side"),
        ("seller", "complete", None, 403, "wrong_side"),
        ("seller", "requirements", {"requirements": "x"}, 403, "wrong_side"),
        ("seller", "revision", {"reason": "x"}, 403, "wrong_side"),
        ("buyer", "requirements", {"requirements": "nul\x00"}, 422, "invalid_text"),
        ("buyer", "requirements", {"requirements": "   "}, 422, "invalid_text"),
        ("buyer", "requirements", {"requirements": "r" * 2001}, 422, "invalid_text"),
        ("buyer", "requirements", {}, 422, "invalid_input"),
        ("seller", "deliver", {"message": ""}, 422, "invalid_text"),
        ("seller", "deliver", {"message": "nul\x00"}, 422, "invalid_text"),
        ("buyer", "cancel", {"reason": ""}, 422, "invalid_text"),
        ("buyer", "cancel", None, 422, "invalid_input"),
    ],
)
def test_steps_out_of_order_or_by_the_wrong_side_change_nothing(
    order, as_buyer, as_seller, who, path, payload, status, code
):
    api = as_buyer if who == "buyer" else as_seller
    before = everything()

    assert_error(api.post(f"/orders/{order.number}/{path}", payload), status, code)
    assert everything() == before


def test_delivered_orders_refuse_cancelling_and_a_second_delivery(order, seller, as_buyer, as_seller):
    orders.deliver_order(seller=seller, order=order, message="Done")
    before = everything()

    assert_error(as_buyer.post(f"/orders/{order.number}/cancel", {"reason": "Changed my mind"}), 409)
    assert_error(as_seller.post(f"/orders/{order.number}/deliver", {"message": "Again"}), 409)
    assert_error(as_buyer.post(f"/orders/{order.number}/requirements", {"requirements": "Late"}), 409)
    assert everything() == before


def test_requirements_are_submitted_once(order, as_buyer):
    assert as_buyer.post(f"/orders/{order.number}/requirements", {"requirements": "Blue"}).status_code == 200
    before = everything()

    response = as_buyer.post(f"/orders/{order.number}/requirements", {"requirements": "Red"})

    assert_error(response, 409, "requirements_already_submitted")
    assert everything() == before


def test_no_revision_once_all_are_used(buyer, seller, conversation, as_buyer):
    offer = orders.create_offer(
        seller=seller,
        conversation=conversation,
        description="One shot",
        price=50,
        delivery_days=2,
        revisions=0,
    )
    order = orders.accept_offer(buyer=buyer, offer=offer)
    orders.deliver_order(seller=seller, order=order, message="Done")
    before = everything()

    assert_error(
        as_buyer.post(f"/orders/{order.number}/revision", {"reason": "More"}), 409, "no_revisions_left"
    )
    assert everything() == before


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"rating": 0}, 422, "invalid_rating"),
        ({"rating": 6}, 422, "invalid_rating"),
        ({"rating": 10**30}, 422, "invalid_rating"),
        ({"rating": "five"}, 422, "invalid_input"),
        ({"rating": 5, "text": "nul\x00"}, 422, "invalid_text"),
        ({"rating": 5, "text": "t" * 2001}, 422, "invalid_text"),
    ],
)
def test_bad_reviews_are_refused(buyer, seller, as_buyer, payload, status, code):
    order = orders.complete_order(
        buyer=buyer,
        order=orders.deliver_order(
            seller=seller,
            order=orders.accept_offer(
                buyer=buyer,
                offer=orders.create_offer(
                    seller=seller,
                    conversation=get_or_create_conversation(user=buyer, other_user=seller),
                    description="Logo",
                    price=50,
                    delivery_days=2,
                ),
            ),
            message="Done",
        ),
    )
    before = everything()

    assert_error(as_buyer.post(f"/orders/{order.number}/reviews", payload), status, code)
    assert everything() == before


def test_each_side_reviews_once(buyer, seller, as_buyer):
    order = make_completed_order(buyer, seller)
    assert as_buyer.post(f"/orders/{order.number}/reviews", {"rating": 3}).status_code == 201
    before = everything()

    assert_error(as_buyer.post(f"/orders/{order.number}/reviews", {"rating": 5}), 409, "already_reviewed")
    assert everything() == before


ORDER_ACTIONS = [
    ("requirements", {"requirements": "x"}),
    ("deliver", {"message": "x"}),
    ("revision", {"reason": "x"}),
    ("complete", None),
    ("cancel", {"reason": "x"}),
    ("reviews", {"rating": 5}),
]


@pytest.mark.parametrize("number", ["other", "FOAAAAAAAA", "FO%00AAA", "X" * 300, "%F0%9F%92%A9"])
def test_someone_elses_order_is_not_found(order, as_stranger, number):
    number = order.number if number == "other" else number
    before = everything()

    assert_error(as_stranger.get(f"/orders/{number}"), 404, "not_found")
    for action, payload in ORDER_ACTIONS:
        assert_error(as_stranger.post(f"/orders/{number}/{action}", payload), 404, "not_found")
    assert everything() == before
    assert as_stranger.get("/orders").json() == {"items": [], "next_cursor": None}


def test_the_order_list_filters_by_role_and_status_and_pages(
    monkeypatch, buyer, seller, user_factory, conversation, as_seller
):
    monkeypatch.setattr(selectors, "ORDERS_PAGE", 2)
    made = []
    for i in range(3):
        offer = orders.create_offer(
            seller=seller, conversation=conversation, description=f"Job {i}", price=50, delivery_days=2
        )
        made.append(orders.accept_offer(buyer=buyer, offer=offer))
    other_buyer = user_factory("otherbuyer")
    bought_from_seller = orders.accept_offer(
        buyer=other_buyer,
        offer=orders.create_offer(
            seller=seller,
            conversation=get_or_create_conversation(user=other_buyer, other_user=seller),
            description="Other",
            price=60,
            delivery_days=2,
        ),
    )
    orders.cancel_order(user=seller, order=made[0], reason="No time")

    first = as_seller.get("/orders").json()
    assert set(first) == {"items", "next_cursor"}
    assert [o["number"] for o in first["items"]] == [bought_from_seller.number, made[2].number]
    assert all(set(o) == ORDER_KEYS for o in first["items"])
    assert [e["kind"] for e in first["items"][0]["events"]] == ["created", "payment"]
    second = as_seller.get("/orders", {"before": first["next_cursor"]}).json()
    assert [o["number"] for o in second["items"]] == [made[1].number, made[0].number]
    assert second["next_cursor"] is None

    as_buyer = Api(buyer)
    open_bought = as_buyer.get("/orders", {"role": "buyer", "status": "open"}).json()["items"]
    assert [o["number"] for o in open_bought] == [made[2].number, made[1].number]
    assert as_buyer.get("/orders", {"role": "seller"}).json()["items"] == []
    cancelled = as_seller.get("/orders", {"status": "cancelled"}).json()["items"]
    assert [o["number"] for o in cancelled] == [made[0].number]


def _queries(api: Api, path: str, params=None) -> int:
    api.get(path, params)  # the first request with a token also records its use
    with CaptureQueriesContext(connection) as queries:
        assert api.get(path, params).status_code == 200
    return len(queries)


def test_the_order_list_costs_the_same_queries_for_one_order_or_many(buyer, seller, conversation, as_seller):
    def another_order():
        offer = orders.create_offer(
            seller=seller, conversation=conversation, description="Job", price=50, delivery_days=2
        )
        order = orders.accept_offer(buyer=buyer, offer=offer)
        orders.deliver_order(seller=seller, order=order, message="Done")
        orders.complete_order(buyer=buyer, order=order)
        orders.leave_review(author=buyer, order=order, rating=5)

    another_order()
    one = _queries(as_seller, "/orders")
    for _ in range(4):
        another_order()

    assert _queries(as_seller, "/orders") == one
    assert len(as_seller.get("/orders").json()["items"]) == 5


def test_the_gig_lists_cost_the_same_queries_for_one_gig_or_many(seller, user_factory, as_buyer):
    orders.create_gig(seller=seller, title="Gig", description="d", price=10, delivery_days=1)
    one, one_of_seller = _queries(as_buyer, "/gigs"), _queries(as_buyer, "/gigs", {"seller": "seller"})
    for i in range(4):
        orders.create_gig(seller=seller, title=f"Gig {i}", description="d", price=10, delivery_days=1)
        other = user_factory(f"other{i}", seller=True)
        orders.create_gig(seller=other, title=f"Theirs {i}", description="d", price=10, delivery_days=1)

    assert _queries(as_buyer, "/gigs") == one
    assert _queries(as_buyer, "/gigs", {"seller": "seller"}) == one_of_seller


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"role": "admin"}, "invalid_role"),
        ({"role": "buyer\x00"}, "invalid_role"),
        ({"status": "lost"}, "invalid_status"),
        ({"before": HUGE_ID}, "invalid_input"),
        ({"before": 0}, "invalid_input"),
        ({"before": "soon"}, "invalid_input"),
    ],
)
def test_bad_order_list_queries_are_refused(as_buyer, params, code):
    assert_error(as_buyer.get("/orders", params), 422, code)


# --- calls -----------------------------------------------------------------------------------


def test_a_seller_starts_a_call_with_a_unique_link(conversation, as_seller, as_buyer):
    first = as_seller.post(f"/conversations/{conversation.pk}/calls", {"kind": "call"})
    second = as_seller.post(f"/conversations/{conversation.pk}/calls", {"kind": "call"})

    assert first.status_code == 201, first.content
    call = first.json()
    assert set(call) == CALL_KEYS
    assert (call["kind"], call["status"], call["seller"], call["buyer"]) == (
        "call",
        "open",
        "seller",
        "buyer",
    )
    assert call["url"].startswith("https://meet.jit.si/")
    assert call["url"] != second.json()["url"]
    cards = [m for m in thread(as_buyer, conversation.pk) if m["id"] == call["message_id"]]
    assert cards[0]["kind"] == "call"
    assert cards[0]["card"]["url"] == call["url"]


def test_only_the_seller_of_the_conversation_starts_calls(conversation, as_buyer, as_stranger):
    before = everything()

    assert_error(
        as_buyer.post(f"/conversations/{conversation.pk}/calls", {"kind": "call"}), 403, "not_a_seller"
    )
    assert_error(as_stranger.post(f"/conversations/{conversation.pk}/calls", {"kind": "call"}), 404)
    assert_error(as_stranger.post(f"/conversations/{HUGE_ID}/calls", {"kind": "call"}), 404)
    assert everything() == before


def test_a_buyer_books_a_consultation_once(conversation, as_seller, as_buyer):
    starts_at = (timezone.now() + timedelta(days=2)).replace(microsecond=0)
    offered = as_seller.post(
        f"/conversations/{conversation.pk}/calls",
        {"kind": "consultation", "starts_at": starts_at.isoformat(), "duration_minutes": 30},
    )
    assert offered.status_code == 201, offered.content
    call = offered.json()
    assert (call["kind"], call["status"], call["duration_minutes"]) == ("consultation", "offered", 30)
    assert parse_time(call["starts_at"]) == starts_at

    booked = as_buyer.post(f"/calls/{call['id']}/book")

    assert booked.status_code == 200, booked.content
    assert booked.json()["status"] == "booked"
    parse_time(booked.json()["booked_at"])
    card = next(m for m in thread(as_seller, conversation.pk) if m["id"] == call["message_id"])
    assert card["card"]["status"] == "booked"
    before = everything()
    assert_error(as_buyer.post(f"/calls/{call['id']}/book"), 409, "already_booked")
    assert everything() == before


def test_a_slot_that_has_passed_cannot_be_booked(seller, conversation, as_buyer):
    call = orders.offer_consultation(
        seller=seller,
        conversation=conversation,
        starts_at=timezone.now() + timedelta(hours=1),
        duration_minutes=30,
    )
    Call.objects.filter(pk=call.pk).update(starts_at=timezone.now() - timedelta(minutes=1))
    before = everything()

    assert_error(as_buyer.post(f"/calls/{call.pk}/book"), 409, "slot_passed")
    assert everything() == before


def test_only_the_buyer_books_and_strangers_find_nothing(
    seller, conversation, as_buyer, as_seller, as_stranger
):
    call = orders.offer_consultation(
        seller=seller,
        conversation=conversation,
        starts_at=timezone.now() + timedelta(days=1),
        duration_minutes=30,
    )
    video = orders.start_call(seller=seller, conversation=conversation)
    before = everything()

    assert_error(as_seller.post(f"/calls/{call.pk}/book"), 404, "not_found")
    assert_error(as_stranger.post(f"/calls/{call.pk}/book"), 404, "not_found")
    assert_error(as_buyer.post(f"/calls/{video.pk}/book"), 404, "not_found")  # a call is not booked
    assert_error(as_stranger.post(f"/calls/{HUGE_ID}/book"), 404, "not_found")
    assert everything() == before


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"kind": "video"}, "invalid_input"),
        ({}, "invalid_input"),
        ({"kind": "consultation", "duration_minutes": 30}, "invalid_start"),
        ({"kind": "consultation", "starts_at": "+2d", "duration_minutes": 5}, "invalid_duration"),
        ({"kind": "consultation", "starts_at": "+2d", "duration_minutes": 600}, "invalid_duration"),
        ({"kind": "consultation", "starts_at": "+2d"}, "invalid_duration"),
        ({"kind": "consultation", "starts_at": "-2d", "duration_minutes": 30}, "invalid_start"),
        ({"kind": "consultation", "starts_at": "+200d", "duration_minutes": 30}, "invalid_start"),
        (
            {"kind": "consultation", "starts_at": "2030-01-01T10:00:00", "duration_minutes": 30},
            "invalid_start",
        ),
        ({"kind": "consultation", "starts_at": "next week", "duration_minutes": 30}, "invalid_input"),
    ],
)
def test_bad_consultations_are_refused(conversation, as_seller, payload, code):
    if payload.get("starts_at", "")[:1] in "+-" and payload.get("starts_at"):
        days = int(payload["starts_at"][:-1])
        payload = {**payload, "starts_at": (timezone.now() + timedelta(days=days)).isoformat()}
    before = everything()

    assert_error(as_seller.post(f"/conversations/{conversation.pk}/calls", payload), 422, code)
    assert everything() == before


# --- malformed bodies ------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["{", "[]", "null", '"text"', "\x00"])
def test_a_body_that_is_not_an_object_is_refused(seller, as_seller, raw):
    response = as_seller.post("/gigs", raw=raw)

    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)
    assert not Gig.objects.exists()
