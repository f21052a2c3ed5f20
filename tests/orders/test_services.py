"""orders.services and the rules in orders.selectors: gigs, requests, custom offers, the order
lifecycle, reviews, calls, blocking, the Top buyer rule and request mismatches.

Every step shows in the conversation (a card, or a system message tagged with the order), live
for both people; every refused step raises a clear error and leaves everything as it was."""

import re
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from inbox.models import Block, Conversation, Event, Membership, Message
from inbox.payloads import iso_timestamp
from inbox.services import block_user, get_or_create_conversation, send_message
from marketplace.accounts.models import User
from marketplace.accounts.services import set_away
from marketplace.errors import Conflict, Forbidden, InvalidInput, NotFound
from orders import selectors, services
from orders.models import BuyerRequest, Call, CustomOffer, Gig, Order, OrderEvent, Review
from orders.selectors import BuyerStanding
from orders.tasks import expire_offers_task
from tests.helpers import logged_events

pytestmark = pytest.mark.django_db

ORDER_NUMBER = re.compile(r"FO[A-HJ-NP-Z2-9]{8}")  # no 0/O or 1/I


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def conversation(buyer, seller):
    return get_or_create_conversation(user=buyer, other_user=seller)


@pytest.fixture
def other_seller(user_factory):
    return user_factory("rival", seller=True, display_name="Rita Rival")


@pytest.fixture
def gig(seller):
    return services.create_gig(
        seller=seller,
        title="A logo",
        description="Your logo, hand drawn",
        price=120,
        delivery_days=5,
        revisions=2,
    )


def make_offer(seller, conversation, **terms) -> CustomOffer:
    terms = {
        "description": "A logo in three colours",
        "price": 150,
        "delivery_days": 4,
        "revisions": 1,
        **terms,
    }
    return services.create_offer(seller=seller, conversation=conversation, **terms)


@pytest.fixture
def offer(seller, conversation):
    return make_offer(seller, conversation)


@pytest.fixture
def order(buyer, offer):
    return services.accept_offer(buyer=buyer, offer=offer)


def delivered(seller, order) -> Order:
    return services.deliver_order(seller=seller, order=order, message="Here are the files")


def completed(buyer, seller, order) -> Order:
    return services.complete_order(buyer=buyer, order=delivered(seller, order))


@pytest.fixture
def completed_order(buyer, seller, order):
    return completed(buyer, seller, order)


def send(sender, conversation, body) -> Message:
    message, _created = send_message(sender=sender, conversation=conversation, body=body)
    return message


def stored_state() -> dict:
    """Everything a refused step must leave exactly as it was."""
    return {
        "gigs": list(
            Gig.objects.order_by("pk").values_list("pk", "title", "price", "delivery_days", "is_active")
        ),
        "requests": list(BuyerRequest.objects.order_by("pk").values_list("pk", "message_id")),
        "offers": list(CustomOffer.objects.order_by("pk").values_list("pk", "status", "decided_at")),
        "orders": list(
            Order.objects.order_by("pk").values_list(
                "pk",
                "status",
                "revisions_used",
                "requirements",
                "delivered_at",
                "completed_at",
                "cancelled_at",
            )
        ),
        "order_events": list(OrderEvent.objects.order_by("pk").values_list("pk", "kind")),
        "reviews": list(Review.objects.order_by("pk").values_list("pk", "author_id", "rating")),
        "calls": list(Call.objects.order_by("pk").values_list("pk", "status", "booked_at")),
        "messages": list(Message.objects.order_by("pk").values_list("pk", "kind", "order_id", "card")),
        "active_orders": list(Conversation.objects.order_by("pk").values_list("pk", "active_order_id")),
        "memberships": list(
            Membership.objects.order_by("pk").values_list(
                "pk", "has_custom_offer", "has_request", "unread_count"
            )
        ),
        "events": list(Event.objects.order_by("pk").values_list("user_id", "cursor", "type")),
    }


def assert_refused(error, code: str, action):
    """`action` raises `error` with `code`, and nothing is stored."""
    before = stored_state()
    with pytest.raises(error) as raised:
        action()
    assert raised.value.code == code, raised.value.detail
    assert stored_state() == before
    return raised.value


def fresh(instance):
    instance.refresh_from_db()
    return instance


def system_messages(user) -> list[dict]:
    """The order updates the user was told about, as their tabs received them."""
    return [
        e["message"]
        for e in logged_events(user, event_type="message.created")
        if e["message"]["kind"] == "system"
    ]


def card_updates(user) -> list[dict]:
    return [e["message"] for e in logged_events(user, event_type="message.updated")]


# --- gigs ----------------------------------------------------------------------------------

GIG = {"title": "A logo", "description": "Hand drawn", "price": 100, "delivery_days": 3, "revisions": 1}


def test_a_seller_publishes_a_gig(seller):
    gig = services.create_gig(
        seller=seller,
        title="  A logo  ",
        description="Hand drawn",
        price="99.5",
        delivery_days="3",
        revisions=2,
    )

    gig = fresh(gig)
    assert (gig.seller, gig.title, gig.price, gig.delivery_days, gig.revisions, gig.is_active) == (
        seller, "A logo", Decimal("99.50"), 3, 2, True,
    )  # fmt: skip
    assert selectors.gigs_of_seller(seller=seller) == [gig]


def test_a_buyer_cannot_publish_a_gig(buyer):
    error = assert_refused(Forbidden, "not_a_seller", lambda: services.create_gig(seller=buyer, **GIG))
    assert "Only sellers" in error.detail


@pytest.mark.parametrize(
    ("field", "value"),
    [("price", 5), ("price", "50000"), ("price", "5.00"), ("delivery_days", 1), ("delivery_days", 365),
     ("revisions", 0), ("revisions", 20), ("title", "x" * 120)],
)  # fmt: skip
def test_gig_terms_at_the_bounds_are_accepted(seller, field, value):
    gig = services.create_gig(seller=seller, **{**GIG, field: value})

    assert str(getattr(fresh(gig), field)) in (str(value), f"{value}.00")


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("price", "4.99", "invalid_price"),
        ("price", "50000.01", "invalid_price"),
        ("price", 0, "invalid_price"),
        ("price", -10, "invalid_price"),
        ("price", "1e9", "invalid_price"),
        ("price", "NaN", "invalid_price"),
        ("price", "Infinity", "invalid_price"),
        ("price", "twelve", "invalid_price"),
        ("price", None, "invalid_price"),
        ("delivery_days", 0, "invalid_delivery_days"),
        ("delivery_days", 366, "invalid_delivery_days"),
        ("delivery_days", 10_000, "invalid_delivery_days"),
        ("delivery_days", -1, "invalid_delivery_days"),
        ("delivery_days", 1.5, "invalid_delivery_days"),
        ("delivery_days", "three", "invalid_delivery_days"),
        ("revisions", -1, "invalid_revisions"),
        ("revisions", 21, "invalid_revisions"),
        ("title", "", "invalid_text"),
        ("title", "   ", "invalid_text"),
        ("title", "x" * 121, "invalid_text"),
        ("title", "A\x00logo", "invalid_text"),
        ("description", "Hand\x00drawn", "invalid_text"),
    ],
)
def test_gig_terms_out_of_bounds_are_refused(seller, field, value, code):
    assert_refused(InvalidInput, code, lambda: services.create_gig(seller=seller, **{**GIG, field: value}))


def test_a_seller_updates_a_gig_and_can_deactivate_it(seller, gig):
    services.update_gig(
        seller=seller, gig=gig, title="A better logo", price="80", delivery_days=2, revisions=0
    )

    gig = fresh(gig)
    assert (gig.title, gig.price, gig.delivery_days, gig.revisions) == (
        "A better logo",
        Decimal("80.00"),
        2,
        0,
    )

    services.update_gig(seller=seller, gig=gig, is_active=False)

    assert fresh(gig).is_active is False
    assert selectors.gigs_of_seller(seller=seller) == []
    assert selectors.gigs_of_seller(seller=seller, include_inactive=True) == [gig]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [("price", 4, "invalid_price"), ("price", 50_001, "invalid_price"),
     ("delivery_days", 0, "invalid_delivery_days"), ("delivery_days", 366, "invalid_delivery_days"),
     ("revisions", 21, "invalid_revisions"), ("description", "a\x00b", "invalid_text"),
     ("seller_id", 1, "invalid_field")],
)  # fmt: skip
def test_gig_updates_are_checked_like_new_gigs(seller, gig, field, value, code):
    assert_refused(InvalidInput, code, lambda: services.update_gig(seller=seller, gig=gig, **{field: value}))


def test_only_its_seller_updates_a_gig(other_seller, gig):
    assert_refused(NotFound, "not_found", lambda: services.update_gig(seller=other_seller, gig=gig, price=10))


# --- requests ------------------------------------------------------------------------------


def in_days(days: int) -> date:
    return timezone.localdate() + timedelta(days=days)


def test_a_request_opens_the_conversation_as_a_request_card(buyer, seller):
    request = services.send_request(
        buyer=buyer, seller=seller, description="A logo for my bakery", budget="250", deadline=in_days(10)
    )

    message = request.message
    assert (message.kind, message.sender, message.conversation) == ("request", buyer, request.conversation)
    assert message.card == {
        "request_id": request.pk,
        "description": "A logo for my bakery",
        "budget": "250.00",
        "deadline": in_days(10).isoformat(),
    }
    assert "$250" in message.body
    flags = Membership.objects.filter(conversation=request.conversation).values_list(
        "user__username", "has_request", "has_custom_offer"
    )
    assert sorted(flags) == [("buyer", True, False), ("seller", True, False)]
    (live,) = logged_events(seller, event_type="message.created")
    assert live["message"]["kind"] == "request"
    assert live["message"]["card"]["request_id"] == request.pk


def test_a_request_joins_the_existing_conversation(buyer, seller, conversation):
    send(buyer, conversation, "Hello!")

    request = services.send_request(
        buyer=buyer, seller=seller, description="A logo", budget=50, deadline=in_days(5)
    )

    assert request.conversation == conversation
    assert Conversation.objects.count() == 1
    assert fresh(conversation).last_message == request.message


@pytest.mark.parametrize("days", [1, 365])
def test_a_deadline_from_tomorrow_to_a_year_ahead_is_accepted(buyer, seller, days):
    request = services.send_request(
        buyer=buyer, seller=seller, description="A logo", budget=50, deadline=in_days(days)
    )

    assert fresh(request).deadline == in_days(days)


@pytest.mark.parametrize("days", [0, -1, 366])
def test_a_deadline_today_in_the_past_or_beyond_a_year_is_refused(buyer, seller, days):
    error = assert_refused(
        InvalidInput,
        "invalid_deadline",
        lambda: services.send_request(
            buyer=buyer, seller=seller, description="A logo", budget=50, deadline=in_days(days)
        ),
    )
    assert "after today" in error.detail


@pytest.mark.parametrize(
    "deadline", ["2030-01-01", None, datetime(2030, 1, 1, tzinfo=timezone.get_current_timezone())]
)
def test_a_deadline_must_be_a_date(buyer, seller, deadline):
    assert_refused(
        InvalidInput,
        "invalid_deadline",
        lambda: services.send_request(
            buyer=buyer, seller=seller, description="A logo", budget=50, deadline=deadline
        ),
    )


@pytest.mark.parametrize(
    ("change", "code"),
    [({"budget": "4"}, "invalid_price"), ({"budget": -100}, "invalid_price"),
     ({"budget": 50_001}, "invalid_price"), ({"description": " "}, "invalid_text"),
     ({"description": "a\x00b"}, "invalid_text")],
)  # fmt: skip
def test_a_request_s_budget_and_brief_are_checked(buyer, seller, change, code):
    request = {"description": "A logo", "budget": 50, "deadline": in_days(5), **change}
    assert_refused(InvalidInput, code, lambda: services.send_request(buyer=buyer, seller=seller, **request))


def test_requests_go_to_sellers_only_and_not_to_oneself(buyer, seller, stranger):
    request = {"description": "A logo", "budget": 50, "deadline": in_days(5)}
    assert_refused(
        InvalidInput, "not_a_seller", lambda: services.send_request(buyer=buyer, seller=stranger, **request)
    )
    assert_refused(
        InvalidInput, "invalid_request", lambda: services.send_request(buyer=seller, seller=seller, **request)
    )


# --- custom offers -------------------------------------------------------------------------


def test_a_seller_sends_a_custom_offer_as_a_card(buyer, seller, conversation):
    offer = make_offer(seller, conversation, title="Logo pack", expires_in_days=3)

    offer = fresh(offer)
    assert (offer.seller, offer.buyer, offer.status, offer.gig) == (seller, buyer, "pending", None)
    assert abs(offer.expires_at - (timezone.now() + timedelta(days=3))) < timedelta(minutes=1)
    message = offer.message
    assert (message.kind, message.sender, message.order) == ("offer", seller, None)
    assert message.card == {
        "offer_id": offer.pk,
        "title": "Logo pack",
        "description": "A logo in three colours",
        "price": "150.00",
        "delivery_days": 4,
        "revisions": 1,
        "expires_at": iso_timestamp(offer.expires_at),
        "status": "pending",
        "order_number": None,
    }
    assert message.body == "Custom offer: Logo pack ($150, 4-day delivery)"
    flags = Membership.objects.filter(conversation=conversation).values_list(
        "has_custom_offer", "has_request"
    )
    assert list(flags) == [(True, False), (True, False)]
    (live,) = logged_events(buyer, event_type="message.created")
    assert live["message"]["card"]["offer_id"] == offer.pk


def test_a_stand_alone_offer_takes_its_title_from_the_description(seller, conversation):
    offer = make_offer(seller, conversation, description="A logo and a matching business card")

    assert offer.title == "A logo and a matching business card"
    assert offer.revisions == 1


def test_an_offer_from_a_gig_takes_the_gig_s_terms(seller, conversation, gig):
    offer = services.create_offer(
        seller=seller, conversation=conversation, gig=gig, description="As discussed"
    )

    offer = fresh(offer)
    assert (offer.gig, offer.title, offer.price, offer.delivery_days, offer.revisions) == (
        gig, "A logo", Decimal("120.00"), 5, 2,
    )  # fmt: skip
    card = offer.message.card
    assert (card["title"], card["price"], card["delivery_days"], card["revisions"]) == (
        "A logo",
        "120.00",
        5,
        2,
    )


def test_terms_given_with_a_gig_replace_the_gig_s(seller, conversation, gig):
    offer = services.create_offer(
        seller=seller, conversation=conversation, gig=gig, description="Rush job", price=200, delivery_days=1
    )

    assert (offer.title, offer.price, offer.delivery_days, offer.revisions) == (
        "A logo",
        Decimal("200.00"),
        1,
        2,
    )


def test_an_offer_cannot_use_another_seller_s_gig_or_an_inactive_one(seller, other_seller, conversation, gig):
    theirs = services.create_gig(seller=other_seller, **GIG)
    assert_refused(
        NotFound,
        "not_found",
        lambda: services.create_offer(
            seller=seller, conversation=conversation, gig=theirs, description="Mine now"
        ),
    )
    services.update_gig(seller=seller, gig=gig, is_active=False)
    assert_refused(
        NotFound,
        "not_found",
        lambda: services.create_offer(
            seller=seller, conversation=conversation, gig=gig, description="Old gig"
        ),
    )


def test_a_buyer_cannot_make_an_offer(buyer, conversation):
    error = assert_refused(Forbidden, "not_a_seller", lambda: make_offer(buyer, conversation))
    assert "Only sellers make custom offers" in error.detail


def test_a_seller_cannot_make_an_offer_in_someone_else_s_conversation(other_seller, conversation):
    assert_refused(NotFound, "not_found", lambda: make_offer(other_seller, conversation))


@pytest.mark.parametrize(
    ("terms", "code"),
    [({"price": None}, "invalid_offer"), ({"delivery_days": None}, "invalid_offer"),
     ({"price": "-5"}, "invalid_price"), ({"price": 1_000_000}, "invalid_price"),
     ({"delivery_days": 0}, "invalid_delivery_days"), ({"delivery_days": 10_000}, "invalid_delivery_days"),
     ({"revisions": 99}, "invalid_revisions"), ({"expires_in_days": 0}, "invalid_expiry"),
     ({"expires_in_days": 31}, "invalid_expiry"), ({"description": ""}, "invalid_text"),
     ({"description": "a\x00b"}, "invalid_text")],
)  # fmt: skip
def test_an_offer_s_terms_are_checked(seller, conversation, terms, code):
    assert_refused(InvalidInput, code, lambda: make_offer(seller, conversation, **terms))


# --- accepting an offer --------------------------------------------------------------------


def test_accepting_an_offer_starts_an_order(buyer, seller, conversation, offer):
    before = timezone.now()

    order = fresh(services.accept_offer(buyer=buyer, offer=offer))

    assert ORDER_NUMBER.fullmatch(order.number), order.number
    assert (order.buyer, order.seller, order.conversation, order.offer, order.status) == (
        buyer, seller, conversation, offer, "active",
    )  # fmt: skip
    assert (order.title, order.description, order.price, order.delivery_days, order.revisions_included) == (
        "A logo in three colours", "A logo in three colours", Decimal("150.00"), 4, 1,
    )  # fmt: skip
    assert before <= order.created_at <= timezone.now()
    assert order.due_at == order.created_at + timedelta(days=4)
    offer = fresh(offer)
    assert offer.status == "accepted"
    assert offer.decided_at is not None
    assert selectors.order_for_user(user=buyer, number=order.number.lower()) == order
    assert selectors.order_for_user(user=seller, number=order.number) == order


def test_accepting_records_creation_and_payment_each_with_a_system_message_tagged_with_the_order(
    buyer, seller, order
):
    events = selectors.order_timeline(order=order)

    assert [event.kind for event in events] == ["created", "payment"]
    assert {event.actor for event in events} == {buyer}
    assert events[1].data == {"amount": "150.00", "placeholder": True}
    for event in events:
        assert (event.message.kind, event.message.order) == ("system", order)
        assert event.message.card == {"event": event.kind, "order_number": order.number, "status": "active"}
    assert events[0].message.body == (
        f"Order #{order.number} started: A logo in three colours ($150, due in 4 days)."
    )
    assert "placeholder" in events[1].message.body
    for viewer in (buyer, seller):
        assert selectors.order_messages(order=order, viewer=viewer) == [event.message for event in events]
    for user in (buyer, seller):
        told = system_messages(user)
        assert [m["order"] for m in told] == [{"id": order.pk, "number": order.number}] * 2
        assert [m["card"]["event"] for m in told] == ["created", "payment"]


def test_the_offer_card_shows_accepted_with_the_order_number_for_both(buyer, seller, offer, order):
    card = fresh(offer.message).card

    assert (card["status"], card["order_number"]) == ("accepted", order.number)
    for user in (buyer, seller):
        (update,) = card_updates(user)
        assert update["id"] == offer.message_id
        assert (update["card"]["status"], update["card"]["order_number"]) == ("accepted", order.number)


def test_after_accepting_the_next_text_message_carries_the_order(buyer, seller, conversation, offer):
    before = send(buyer, conversation, "Looks good!")

    order = services.accept_offer(buyer=buyer, offer=offer)

    assert fresh(conversation).active_order == order
    reply = send(seller, conversation, "Thanks, starting now.")
    assert (before.order, reply.order) == (None, order)
    told = logged_events(buyer, event_type="message.created")[-1]["message"]
    assert (told["body"], told["order"]) == (
        "Thanks, starting now.",
        {"id": order.pk, "number": order.number},
    )
    for viewer in (buyer, seller):
        assert reply in selectors.order_messages(order=order, viewer=viewer)


def test_the_buyer_declines_an_offer(buyer, seller, offer):
    services.decline_offer(buyer=buyer, offer=offer)

    offer = fresh(offer)
    assert offer.status == "declined"
    assert offer.decided_at is not None
    assert offer.message.card["status"] == "declined"
    assert [u["card"]["status"] for u in card_updates(seller)] == ["declined"]
    assert not Order.objects.exists()


def test_the_seller_withdraws_a_pending_offer(buyer, seller, offer):
    services.withdraw_offer(seller=seller, offer=offer)

    offer = fresh(offer)
    assert (offer.status, offer.message.card["status"]) == ("withdrawn", "withdrawn")
    assert [u["card"]["status"] for u in card_updates(buyer)] == ["withdrawn"]


def test_only_the_offer_s_buyer_accepts_or_declines_and_only_its_seller_withdraws(
    buyer, seller, stranger, offer
):
    assert_refused(NotFound, "not_found", lambda: services.accept_offer(buyer=stranger, offer=offer))
    assert_refused(NotFound, "not_found", lambda: services.accept_offer(buyer=seller, offer=offer))
    assert_refused(NotFound, "not_found", lambda: services.decline_offer(buyer=seller, offer=offer))
    assert_refused(NotFound, "not_found", lambda: services.withdraw_offer(seller=buyer, offer=offer))
    assert fresh(offer).status == "pending"


def accept(buyer, seller, offer):
    return services.accept_offer(buyer=buyer, offer=offer)


def decline(buyer, seller, offer):
    return services.decline_offer(buyer=buyer, offer=offer)


def withdraw(buyer, seller, offer):
    return services.withdraw_offer(seller=seller, offer=offer)


def expire(buyer, seller, offer):
    CustomOffer.objects.filter(pk=offer.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.expire_offers() == 1


@pytest.mark.parametrize("first", [accept, decline, withdraw, expire], ids=lambda f: f.__name__)
@pytest.mark.parametrize("then", [accept, decline, withdraw], ids=lambda f: f.__name__)
def test_an_offer_is_decided_once(buyer, seller, offer, first, then):
    first(buyer, seller, offer)
    status = fresh(offer).status

    error = assert_refused(Conflict, f"offer_{status}", lambda: then(buyer, seller, offer))

    assert ("expired" if status == "expired" else f"already {status}") in error.detail
    assert Order.objects.count() == (1 if first is accept else 0)


def test_an_offer_past_its_expiry_cannot_be_accepted_even_before_the_beat_marks_it(buyer, offer):
    CustomOffer.objects.filter(pk=offer.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    error = assert_refused(Conflict, "offer_expired", lambda: services.accept_offer(buyer=buyer, offer=offer))

    assert "expired" in error.detail
    assert fresh(offer).status == "pending"  # the beat task marks it, and updates the card
    assert fresh(offer.message).card["status"] == "pending"


def test_a_second_accept_changes_nothing(buyer, offer, order):
    assert_refused(Conflict, "offer_accepted", lambda: services.accept_offer(buyer=buyer, offer=offer))

    assert list(Order.objects.all()) == [order]
    assert fresh(offer.message).card["order_number"] == order.number


# --- expiring offers (Celery beat) ---------------------------------------------------------


def test_expire_offers_marks_pending_offers_past_their_expiry_and_updates_their_cards(
    buyer, seller, conversation
):
    due = make_offer(seller, conversation)
    not_yet = make_offer(seller, conversation)
    declined = make_offer(seller, conversation)
    services.decline_offer(buyer=buyer, offer=declined)
    CustomOffer.objects.filter(pk__in=[due.pk, declined.pk]).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    updates_before = {user: len(card_updates(user)) for user in (buyer, seller)}

    assert services.expire_offers() == 1

    assert [fresh(offer).status for offer in (due, not_yet, declined)] == ["expired", "pending", "declined"]
    assert fresh(due).decided_at is not None
    assert [fresh(offer.message).card["status"] for offer in (due, not_yet, declined)] == [
        "expired", "pending", "declined",
    ]  # fmt: skip
    for user in (buyer, seller):
        new_updates = card_updates(user)[updates_before[user] :]
        assert [(u["id"], u["card"]["status"]) for u in new_updates] == [(due.message_id, "expired")]
    assert services.expire_offers() == 0  # a second run finds nothing to do


def test_expire_offers_works_through_every_batch(buyer, seller, conversation):
    offers = [make_offer(seller, conversation) for _ in range(5)]
    CustomOffer.objects.update(expires_at=timezone.now() - timedelta(minutes=1))

    assert services.expire_offers(batch_size=2) == 5

    assert {fresh(offer).status for offer in offers} == {"expired"}


def test_the_beat_schedule_runs_the_expiry_task(buyer, seller, conversation):
    assert django_settings.CELERY_BEAT_SCHEDULE["expire-offers"]["task"] == expire_offers_task.name
    assert expire_offers_task.name == "orders.expire_offers"
    due = make_offer(seller, conversation)
    CustomOffer.objects.filter(pk=due.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    assert expire_offers_task.apply().get() == 1

    assert fresh(due).status == "expired"
    assert expire_offers_task.apply().get() == 0


# --- the order lifecycle -------------------------------------------------------------------


def test_an_order_goes_through_requirements_delivery_a_revision_and_completion(
    buyer, seller, conversation, order
):
    order = services.submit_requirements(buyer=buyer, order=order, requirements="Green and gold, please")
    assert (order.status, order.requirements) == ("active", "Green and gold, please")
    assert order.requirements_submitted_at is not None

    order = services.deliver_order(seller=seller, order=order, message="Three drafts attached")
    assert (order.status, order.revisions_left) == ("delivered", 1)
    assert order.delivered_at is not None

    order = services.request_revision(buyer=buyer, order=order, reason="Bigger letters")
    assert (order.status, order.revisions_used, order.revisions_left) == ("revision_requested", 1, 0)

    order = services.deliver_order(seller=seller, order=order, message="Bigger letters now")
    assert order.status == "delivered"

    order = services.complete_order(buyer=buyer, order=order)
    assert order.status == "completed"
    assert order.completed_at is not None

    timeline = selectors.order_timeline(order=order)
    assert [(event.kind, event.actor) for event in timeline] == [
        ("created", buyer), ("payment", buyer), ("requirements_submitted", buyer), ("delivered", seller),
        ("revision_requested", buyer), ("delivered", seller), ("completed", buyer),
    ]  # fmt: skip
    messages = [event.message for event in timeline]
    assert {(m.kind, m.order_id, m.conversation_id) for m in messages} == {
        ("system", order.pk, conversation.pk)
    }
    assert [m.card["status"] for m in messages] == [
        "active", "active", "active", "delivered", "revision_requested", "delivered", "completed",
    ]  # fmt: skip
    assert "Green and gold, please" in messages[2].body
    assert "Three drafts attached" in messages[3].body
    assert "Bigger letters" in messages[4].body
    assert messages[6].body == f"Order #{order.number} is complete."
    assert [m["id"] for m in system_messages(buyer)] == [m.pk for m in messages]
    assert [m["id"] for m in system_messages(seller)] == [m.pk for m in messages]


def test_requirements_are_submitted_once_by_the_buyer(buyer, seller, order):
    assert_refused(
        Forbidden,
        "wrong_side",
        lambda: services.submit_requirements(buyer=seller, order=order, requirements="x"),
    )
    assert_refused(
        InvalidInput,
        "invalid_text",
        lambda: services.submit_requirements(buyer=buyer, order=order, requirements=" "),
    )
    services.submit_requirements(buyer=buyer, order=order, requirements="Green and gold")

    assert_refused(
        Conflict,
        "requirements_already_submitted",
        lambda: services.submit_requirements(buyer=buyer, order=order, requirements="Actually, blue"),
    )
    assert fresh(order).requirements == "Green and gold"


def test_a_revision_is_refused_once_every_included_revision_was_used(buyer, seller, order):
    order = delivered(seller, order)
    order = services.request_revision(buyer=buyer, order=order, reason="Bigger letters")
    order = delivered(seller, order)

    error = assert_refused(
        Conflict,
        "no_revisions_left",
        lambda: services.request_revision(buyer=buyer, order=order, reason="Again"),
    )

    assert "All 1 revisions" in error.detail
    assert (fresh(order).status, fresh(order).revisions_used) == ("delivered", 1)
    services.complete_order(buyer=buyer, order=order)  # the buyer can still accept the delivery


def test_an_order_without_revisions_refuses_the_first_request(buyer, seller, conversation):
    order = services.accept_offer(buyer=buyer, offer=make_offer(seller, conversation, revisions=0))
    order = delivered(seller, order)

    assert_refused(
        Conflict,
        "no_revisions_left",
        lambda: services.request_revision(buyer=buyer, order=order, reason="More"),
    )


def test_each_step_belongs_to_one_side(buyer, seller, order):
    assert_refused(
        Forbidden,
        "wrong_side",
        lambda: services.deliver_order(seller=buyer, order=order, message="Self-made"),
    )
    order = delivered(seller, order)
    error = assert_refused(
        Forbidden, "wrong_side", lambda: services.complete_order(buyer=seller, order=order)
    )
    assert error.detail == "Only the buyer can do this."
    assert_refused(
        Forbidden, "wrong_side", lambda: services.request_revision(buyer=seller, order=order, reason="Nope")
    )


def test_a_stranger_finds_no_order(stranger, order):
    for action in [
        lambda: services.submit_requirements(buyer=stranger, order=order, requirements="Hi"),
        lambda: services.deliver_order(seller=stranger, order=order, message="Hi"),
        lambda: services.complete_order(buyer=stranger, order=order),
        lambda: services.cancel_order(user=stranger, order=order, reason="Hi"),
        lambda: services.leave_review(author=stranger, order=order, rating=1),
    ]:
        assert_refused(NotFound, "not_found", action)
    with pytest.raises(NotFound):
        selectors.order_for_user(user=stranger, number=order.number)


def test_steps_out_of_order_are_refused_with_nothing_changed(buyer, seller, order):
    error = assert_refused(
        Conflict, "invalid_transition", lambda: services.complete_order(buyer=buyer, order=order)
    )
    assert error.detail == f"Order #{order.number} is in progress; that step is not possible."
    assert_refused(
        Conflict,
        "invalid_transition",
        lambda: services.request_revision(buyer=buyer, order=order, reason="x"),
    )

    order = delivered(seller, order)
    assert_refused(Conflict, "invalid_transition", lambda: delivered(seller, order))
    assert_refused(
        Conflict,
        "invalid_transition",
        lambda: services.cancel_order(user=buyer, order=order, reason="Too late"),
    )

    order = services.complete_order(buyer=buyer, order=order)
    for action in [
        lambda: delivered(seller, order),
        lambda: services.complete_order(buyer=buyer, order=order),
        lambda: services.request_revision(buyer=buyer, order=order, reason="x"),
        lambda: services.cancel_order(user=seller, order=order, reason="x"),
        lambda: services.submit_requirements(buyer=buyer, order=order, requirements="x"),
    ]:
        assert_refused(Conflict, "invalid_transition", action)


@pytest.mark.parametrize("side", ["buyer", "seller"])
def test_either_side_cancels_an_order_before_delivery(buyer, seller, conversation, order, side):
    user = {"buyer": buyer, "seller": seller}[side]

    order = services.cancel_order(user=user, order=order, reason="Plans changed")

    assert order.status == "cancelled"
    assert order.cancelled_at is not None
    event = order.events.last()
    assert (event.kind, event.actor, event.data) == (
        "cancelled",
        user,
        {"reason": "Plans changed", "by": side},
    )
    assert event.message.body == f"Order #{order.number} was cancelled by the {side}: Plans changed"
    assert fresh(conversation).active_order is None
    assert send(buyer, conversation, "No hard feelings").order is None


def test_once_work_was_delivered_it_cannot_be_cancelled_even_during_a_revision(buyer, seller, order):
    order = delivered(seller, order)
    order = services.request_revision(buyer=buyer, order=order, reason="Warmer colours, please")
    for user in (buyer, seller):
        assert_refused(
            Conflict,
            "invalid_transition",
            lambda user=user: services.cancel_order(user=user, order=order, reason="x"),
        )


def test_requirements_are_refused_to_the_seller_even_after_the_buyer_sent_them(buyer, seller, order):
    services.submit_requirements(buyer=buyer, order=order, requirements="Name: Le Fournil")
    assert_refused(
        Forbidden,
        "wrong_side",
        lambda: services.submit_requirements(buyer=seller, order=order, requirements="Mine"),
    )
    assert_refused(
        Conflict,
        "requirements_already_submitted",
        lambda: services.submit_requirements(buyer=buyer, order=order, requirements="Again"),
    )


def test_a_cancellation_needs_a_reason(buyer, order):
    assert_refused(
        InvalidInput, "invalid_text", lambda: services.cancel_order(user=buyer, order=order, reason="")
    )


def test_once_the_order_closes_new_messages_are_no_longer_tagged_with_it(buyer, seller, conversation, order):
    order = delivered(seller, order)
    assert send(buyer, conversation, "Checking it now").order == order

    services.complete_order(buyer=buyer, order=order)

    assert fresh(conversation).active_order is None
    assert send(buyer, conversation, "Thank you!").order is None


def test_when_one_of_two_open_orders_closes_messages_go_with_the_other(buyer, seller, conversation):
    first = services.accept_offer(buyer=buyer, offer=make_offer(seller, conversation))
    second = services.accept_offer(buyer=buyer, offer=make_offer(seller, conversation))
    assert fresh(conversation).active_order == second

    services.cancel_order(user=seller, order=second, reason="Duplicate")
    assert fresh(conversation).active_order == first
    assert send(buyer, conversation, "About the first one").order == first

    completed(buyer, seller, first)
    assert fresh(conversation).active_order is None


# --- reviews -------------------------------------------------------------------------------


def test_each_side_reviews_the_other_once_after_completion(buyer, seller, completed_order):
    by_buyer = services.leave_review(author=buyer, order=completed_order, rating=5, text="Lovely work")
    by_seller = services.leave_review(author=seller, order=completed_order, rating="4")

    assert (by_buyer.subject, by_buyer.rating, by_buyer.text) == (seller, 5, "Lovely work")
    assert (by_seller.subject, by_seller.rating, by_seller.text) == (buyer, 4, "")
    error = assert_refused(
        Conflict,
        "already_reviewed",
        lambda: services.leave_review(author=buyer, order=completed_order, rating=1),
    )
    assert "already reviewed" in error.detail
    reviews = completed_order.events.filter(kind="review")
    assert [(e.actor, e.data) for e in reviews] == [(buyer, {"rating": 5}), (seller, {"rating": 4})]
    assert reviews[0].message.body == f"Bella Buyer left a 5-star review on #{completed_order.number}."


@pytest.mark.parametrize("rating", [0, 6, -1, 4.5, "five", None])
def test_a_rating_is_one_to_five_stars(buyer, completed_order, rating):
    assert_refused(
        InvalidInput,
        "invalid_rating",
        lambda: services.leave_review(author=buyer, order=completed_order, rating=rating),
    )


def test_a_review_text_is_checked(buyer, completed_order):
    assert_refused(
        InvalidInput,
        "invalid_text",
        lambda: services.leave_review(author=buyer, order=completed_order, rating=5, text="a\x00b"),
    )


def test_reviews_come_after_completion(buyer, seller, order):
    assert_refused(
        Conflict, "invalid_transition", lambda: services.leave_review(author=buyer, order=order, rating=5)
    )
    services.cancel_order(user=buyer, order=order, reason="Changed my mind")
    assert_refused(
        Conflict, "invalid_transition", lambda: services.leave_review(author=seller, order=order, rating=1)
    )


# --- calls ---------------------------------------------------------------------------------


def test_a_seller_starts_a_call_with_a_new_meeting_link_each_time(settings, buyer, seller, conversation):
    settings.CALL_URL_TEMPLATE = "https://meet.example.org/rooms/{room}?lang=en"

    first = services.start_call(seller=seller, conversation=conversation)
    second = services.start_call(seller=seller, conversation=conversation)

    assert first.url != second.url
    for call in (first, second):
        assert re.fullmatch(r"https://meet\.example\.org/rooms/marketplace-[0-9a-f]{16}\?lang=en", call.url)
        call = fresh(call)
        assert (call.kind, call.status, call.seller, call.buyer) == ("call", "open", seller, buyer)
        assert (call.message.kind, call.message.sender) == ("call", seller)
        assert call.message.card == {
            "call_id": call.pk, "kind": "call", "url": call.url, "starts_at": None, "duration_minutes": None,
            "status": "open",
        }  # fmt: skip
        assert call.url in call.message.body
    live = [e["message"] for e in logged_events(buyer, event_type="message.created")]
    assert [m["card"]["url"] for m in live] == [first.url, second.url]


def test_only_sellers_start_calls(buyer, conversation):
    error = assert_refused(
        Forbidden, "not_a_seller", lambda: services.start_call(seller=buyer, conversation=conversation)
    )
    assert error.detail == "Only sellers start calls."


def test_a_seller_cannot_call_into_someone_else_s_conversation(other_seller, conversation):
    assert_refused(
        NotFound, "not_found", lambda: services.start_call(seller=other_seller, conversation=conversation)
    )


def test_a_buyer_books_an_offered_consultation_once(buyer, seller, conversation):
    starts_at = timezone.now() + timedelta(days=2)
    call = services.offer_consultation(
        seller=seller, conversation=conversation, starts_at=starts_at, duration_minutes=30
    )
    assert (call.kind, call.status, call.buyer) == ("consultation", "offered", buyer)
    assert call.message.card["starts_at"] == iso_timestamp(starts_at)
    assert call.message.card["duration_minutes"] == 30

    call = services.book_consultation(buyer=buyer, call=call)

    assert call.status == "booked"
    assert call.booked_at is not None
    assert fresh(call.message).card["status"] == "booked"
    for user in (buyer, seller):
        assert [(u["id"], u["card"]["status"]) for u in card_updates(user)] == [(call.message_id, "booked")]
    assert_refused(Conflict, "already_booked", lambda: services.book_consultation(buyer=buyer, call=call))


@pytest.mark.parametrize(
    ("starts_in", "minutes", "code"),
    [(timedelta(hours=-1), 30, "invalid_start"), (timedelta(days=91), 30, "invalid_start"),
     (timedelta(days=1), 14, "invalid_duration"), (timedelta(days=1), 241, "invalid_duration")],
)  # fmt: skip
def test_a_consultation_is_in_the_future_and_of_a_sensible_length(
    seller, conversation, starts_in, minutes, code
):
    assert_refused(
        InvalidInput,
        code,
        lambda: services.offer_consultation(
            seller=seller,
            conversation=conversation,
            starts_at=timezone.now() + starts_in,
            duration_minutes=minutes,
        ),
    )


def test_a_consultation_start_needs_its_time_zone(seller, conversation):
    naive = datetime.now() + timedelta(days=1)  # naive: the point of the test
    assert_refused(
        InvalidInput,
        "invalid_start",
        lambda: services.offer_consultation(
            seller=seller, conversation=conversation, starts_at=naive, duration_minutes=30
        ),
    )


def test_only_sellers_offer_consultations(buyer, conversation):
    assert_refused(
        Forbidden,
        "not_a_seller",
        lambda: services.offer_consultation(
            seller=buyer,
            conversation=conversation,
            starts_at=timezone.now() + timedelta(days=1),
            duration_minutes=30,
        ),
    )


def test_a_slot_that_has_passed_cannot_be_booked(buyer, seller, conversation):
    call = services.offer_consultation(
        seller=seller,
        conversation=conversation,
        starts_at=timezone.now() + timedelta(hours=1),
        duration_minutes=30,
    )
    Call.objects.filter(pk=call.pk).update(starts_at=timezone.now() - timedelta(minutes=1))

    error = assert_refused(
        Conflict, "slot_passed", lambda: services.book_consultation(buyer=buyer, call=call)
    )

    assert "passed" in error.detail
    assert fresh(call).status == "offered"


def test_only_the_buyer_books_and_only_a_consultation(buyer, seller, conversation):
    slot = services.offer_consultation(
        seller=seller,
        conversation=conversation,
        starts_at=timezone.now() + timedelta(days=1),
        duration_minutes=30,
    )
    call = services.start_call(seller=seller, conversation=conversation)

    assert_refused(NotFound, "not_found", lambda: services.book_consultation(buyer=seller, call=slot))
    assert_refused(NotFound, "not_found", lambda: services.book_consultation(buyer=buyer, call=call))


# --- blocking ------------------------------------------------------------------------------


def assert_block_refused(blocker, blocked):
    with pytest.raises(Forbidden) as refused:
        block_user(blocker=blocker, blocked=blocked)
    assert refused.value.code == "block_not_allowed"
    assert refused.value.detail == "You can block someone once an order between you is completed."
    assert not Block.objects.exists()


def test_blocking_needs_a_completed_order_between_the_two(buyer, seller, conversation):
    assert_block_refused(buyer, seller)  # no order yet
    order = services.accept_offer(buyer=buyer, offer=make_offer(seller, conversation))
    assert_block_refused(buyer, seller)  # an open order
    order = delivered(seller, order)
    assert_block_refused(seller, buyer)  # delivered, not completed

    services.complete_order(buyer=buyer, order=order)

    block_user(blocker=buyer, blocked=seller)
    block_user(blocker=seller, blocked=buyer)
    assert set(Block.objects.values_list("blocker", "blocked")) == {
        (buyer.pk, seller.pk),
        (seller.pk, buyer.pk),
    }


def test_a_cancelled_order_does_not_allow_blocking(buyer, seller, order):
    services.cancel_order(user=buyer, order=order, reason="Changed my mind")

    assert_block_refused(seller, buyer)


# --- the Top buyer rule --------------------------------------------------------------------


def buy(buyer, seller, conversation, price) -> Order:
    order = services.accept_offer(buyer=buyer, offer=make_offer(seller, conversation, price=price))
    return completed(buyer, seller, order)


def test_a_top_buyer_has_enough_completed_orders_and_spend_in_the_last_year(
    settings, buyer, seller, conversation
):
    settings.TOP_BUYER_MIN_COMPLETED_ORDERS = 3
    settings.TOP_BUYER_MIN_SPEND = 300
    assert selectors.buyer_standing(buyer=buyer) == BuyerStanding(0, Decimal("0"), False)

    buy(buyer, seller, conversation, 200)
    buy(buyer, seller, conversation, 95)
    assert selectors.buyer_standing(buyer=buyer) == BuyerStanding(2, Decimal("295"), False)  # too few orders

    buy(buyer, seller, conversation, 5)
    assert selectors.buyer_standing(buyer=buyer) == BuyerStanding(3, Decimal("300"), True)  # exactly enough


def test_a_buyer_with_many_small_orders_is_not_a_top_buyer(settings, buyer, seller, conversation):
    settings.TOP_BUYER_MIN_COMPLETED_ORDERS = 2
    settings.TOP_BUYER_MIN_SPEND = 300
    for _ in range(3):
        buy(buyer, seller, conversation, 99)

    assert selectors.buyer_standing(buyer=buyer) == BuyerStanding(3, Decimal("297"), False)


def test_only_orders_completed_in_the_last_365_days_count(settings, buyer, seller, conversation):
    settings.TOP_BUYER_MIN_COMPLETED_ORDERS = 2
    settings.TOP_BUYER_MIN_SPEND = 100
    old = buy(buyer, seller, conversation, 100)
    buy(buyer, seller, conversation, 100)
    services.accept_offer(buyer=buyer, offer=make_offer(seller, conversation, price=500))  # open
    cancelled = services.accept_offer(buyer=buyer, offer=make_offer(seller, conversation, price=500))
    services.cancel_order(user=buyer, order=cancelled, reason="No longer needed")
    assert selectors.buyer_standing(buyer=buyer).is_top_buyer

    Order.objects.filter(pk=old.pk).update(completed_at=timezone.now() - timedelta(days=366))

    assert selectors.buyer_standing(buyer=buyer) == BuyerStanding(1, Decimal("100"), False)
    assert selectors.buyer_standing(buyer=seller) == BuyerStanding(
        0, Decimal("0"), False
    )  # sales do not count


# --- before an order: does a request fit the seller? ---------------------------------------

TODAY = date(2030, 6, 3)


def gigs_for(seller, *terms: tuple[int, int]) -> list[Gig]:
    return [
        services.create_gig(
            seller=seller, title=f"Gig {price}", description="d", price=price, delivery_days=days
        )
        for price, days in terms
    ]


def mismatches(seller, budget, days) -> list[str]:
    return selectors.request_mismatches(
        seller=seller, budget=Decimal(budget), deadline=TODAY + timedelta(days=days), today=TODAY
    )


def test_a_request_within_the_seller_s_terms_fits(seller):
    gigs_for(seller, (100, 7), (60, 3))

    assert mismatches(seller, 60, 3) == []
    assert mismatches(seller, 1000, 30) == []


def test_a_budget_below_the_lowest_price_is_named(seller):
    gigs_for(seller, (100, 3), (60, 3))

    assert mismatches(seller, 50, 10) == ["Your budget ($50) is below Sam Seller's lowest price ($60)."]


def test_a_budget_a_few_cents_short_shows_its_cents(seller):
    gigs_for(seller, (50, 3), (1250, 3))

    assert mismatches(seller, "49.99", 10) == [
        "Your budget ($49.99) is below Sam Seller's lowest price ($50)."
    ]  # not "($50) is below ... ($50)"


def test_a_deadline_shorter_than_the_fastest_delivery_is_named(seller):
    gigs_for(seller, (60, 7), (100, 3))

    assert mismatches(seller, 500, 2) == [
        "Your deadline leaves 2 days; Sam Seller's fastest delivery takes 3 days."
    ]
    assert mismatches(seller, 500, 1) == [
        "Your deadline leaves 1 day; Sam Seller's fastest delivery takes 3 days."
    ]


def test_time_away_before_the_deadline_counts_against_the_delivery(seller):
    gigs_for(seller, (60, 3))
    set_away(user=seller, starts_on=TODAY + timedelta(days=1), ends_on=TODAY + timedelta(days=5))

    # 8 days to the deadline, 5 of them away: 3 left, enough for a 3-day delivery.
    assert mismatches(seller, 500, 8) == []
    # 7 days, 5 away: 2 left.
    assert mismatches(seller, 500, 7) == [
        "Sam Seller is away from Jun 4 to Jun 8, which leaves 2 days before your deadline; "
        "their fastest delivery takes 3 days."
    ]
    # A deadline far enough away leaves plenty of days around the absence.
    assert mismatches(seller, 500, 30) == []


def test_an_away_period_is_checked_and_replaces_one_it_overlaps(seller):
    with pytest.raises(InvalidInput):
        set_away(user=seller, starts_on=TODAY, ends_on=TODAY - timedelta(days=1))
    with pytest.raises(InvalidInput):
        set_away(user=seller, starts_on=TODAY, ends_on=TODAY + timedelta(days=400))
    set_away(user=seller, starts_on=TODAY, ends_on=TODAY + timedelta(days=3))
    set_away(
        user=seller, starts_on=TODAY + timedelta(days=2), ends_on=TODAY + timedelta(days=9), message="Holiday"
    )
    assert list(seller.away_periods.values_list("ends_on", "message")) == [
        (TODAY + timedelta(days=9), "Holiday")
    ]


def test_budget_and_deadline_can_both_miss(seller):
    gigs_for(seller, (60, 3))

    assert len(mismatches(seller, 10, 1)) == 2


def test_a_seller_without_active_gigs_is_named_and_inactive_gigs_do_not_count(seller):
    assert mismatches(seller, 500, 30) == ["Sam Seller has no active gigs at the moment."]

    (cheap,) = gigs_for(seller, (10, 1))
    gigs_for(seller, (100, 5))
    services.update_gig(seller=seller, gig=cheap, is_active=False)

    assert mismatches(seller, 50, 3) == [
        "Your budget ($50) is below Sam Seller's lowest price ($100).",
        "Your deadline leaves 3 days; Sam Seller's fastest delivery takes 5 days.",
    ]


def test_suggested_sellers_are_others_whose_gigs_fit_one_gig_each(user_factory, seller):
    def another_seller(name):
        return user_factory(name, seller=True)

    gigs_for(seller, (10, 1))  # the seller written to: never suggested
    first, _pricier = gigs_for(another_seller("ann"), (30, 2), (40, 3))
    (second,) = gigs_for(another_seller("ben"), (80, 5))
    gigs_for(another_seller("cat"), (150, 2))  # too expensive
    gigs_for(another_seller("dan"), (50, 10))  # too slow
    (hidden,) = gigs_for(another_seller("eve"), (20, 1))
    services.update_gig(seller=hidden.seller, gig=hidden, is_active=False)
    (closed,) = gigs_for(another_seller("fay"), (20, 1))
    User.objects.filter(pk=closed.seller_id).update(is_active=False)  # account closed

    fit = selectors.sellers_that_fit(
        budget=Decimal(100), deadline=TODAY + timedelta(days=5), exclude_seller=seller, today=TODAY
    )

    assert fit == [first, second]


def test_at_most_three_sellers_are_suggested_cheapest_first(user_factory, seller):
    gigs = [
        gigs_for(user_factory(f"s{n}", seller=True), (price, 2))[0]
        for n, price in enumerate([50, 20, 40, 10, 30])
    ]

    fit = selectors.sellers_that_fit(
        budget=Decimal(100), deadline=TODAY + timedelta(days=5), exclude_seller=seller, today=TODAY
    )

    assert [gig.price for gig in fit] == [10, 20, 30]
    assert len({gig.seller_id for gig in fit}) == 3
    assert set(fit) <= set(gigs)
