"""Every notification kind comes from the service that makes the thing happen: to the right
person only (never the one who acted), with a link that opens for them, once per event."""

import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from inbox import services as inbox
from inbox.models import Message
from marketplace.errors import Conflict, Forbidden
from moderation import rules
from moderation import services as moderation
from moderation.models import Restriction
from notifications.models import Kind, Notification
from orders import services as orders
from orders.models import CustomOffer
from tests.factories import buyer_opens_conversation, make_completed_order
from tests.helpers import logged_events
from tests.moderation.support import HELD_TEXT, TEST_SCANNERS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def own_cache(settings):
    """Presence lives in the cache: each test starts with nobody online."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()
    yield
    cache.clear()


def of_kind(kind) -> list[Notification]:
    return list(Notification.objects.filter(kind=kind).order_by("pk"))


def opens_for(user, url: str) -> bool:
    client = Client()
    client.force_login(user)
    return client.get(url).status_code == 200


def the_one(kind, recipient) -> Notification:
    """The only notification of `kind`: it is `recipient`'s and its link opens for them."""
    rows = of_kind(kind)
    assert [(n.recipient_id, n.kind) for n in rows] == [(recipient.pk, kind)]
    notification = rows[0]
    assert opens_for(recipient, notification.url), notification.url
    return notification


def go_online(user):
    cache.set(f"presence:{user.pk}", 1, timeout=60)  # what an open socket keeps set


def offer_to(buyer, seller, **terms):
    conversation = buyer_opens_conversation(buyer, seller)
    terms = {"description": "A hand-drawn logo", "price": 90, "delivery_days": 3, **terms}
    return orders.create_offer(seller=seller, conversation=conversation, **terms)


def an_order(buyer, seller, **terms):
    return orders.accept_offer(buyer=buyer, offer=offer_to(buyer, seller, **terms))


# --- requests and offers -------------------------------------------------------------------------


def test_a_request_tells_the_seller(buyer, seller):
    deadline = timezone.localdate() + timedelta(days=10)
    request = orders.send_request(
        buyer=buyer, seller=seller, description="A logo for my bakery. " * 20, budget=80, deadline=deadline
    )

    notification = the_one(Kind.REQUEST_RECEIVED, seller)
    assert notification.title == "Bella Buyer sent you a request"
    assert notification.body.startswith("A logo for my bakery.")
    assert "\u2026 (budget $80, by" in notification.body  # the description cut to one line
    assert notification.url == f"/inbox/{request.conversation_id}/?message={request.message_id}"
    assert notification.dedupe_key == f"request:{request.pk}"


def test_an_offer_tells_the_buyer_and_is_not_also_a_new_message(buyer, seller):
    offer = offer_to(buyer, seller, price=120)

    notification = the_one(Kind.OFFER_RECEIVED, buyer)
    assert notification.title == "Sam Seller sent you a custom offer"
    assert notification.body == "A hand-drawn logo ($120, 3-day delivery)"
    assert notification.url == f"/inbox/{offer.conversation_id}/?message={offer.message_id}"
    # The buyer's first message told the seller; the offer card is not a second "new message".
    assert [n.recipient_id for n in of_kind(Kind.NEW_MESSAGE)] == [seller.pk]


def test_accepting_tells_the_seller_twice_over_and_only_once(buyer, seller):
    offer = offer_to(buyer, seller)
    order = orders.accept_offer(buyer=buyer, offer=offer)
    with pytest.raises(Conflict):
        orders.accept_offer(buyer=buyer, offer=offer)  # a second click, another tab

    accepted = the_one(Kind.OFFER_ACCEPTED, seller)
    created = the_one(Kind.ORDER_CREATED, seller)  # the buyer placed it: not told
    assert accepted.title == "Bella Buyer accepted your offer"
    assert created.title == f"New order #{order.number} from Bella Buyer"
    assert created.url == accepted.url == f"/orders/{order.number}/"


def test_declining_tells_the_seller(buyer, seller):
    offer = offer_to(buyer, seller)
    orders.decline_offer(buyer=buyer, offer=offer)
    with pytest.raises(Conflict):
        orders.decline_offer(buyer=buyer, offer=offer)

    notification = the_one(Kind.OFFER_DECLINED, seller)
    assert notification.title == "Bella Buyer declined your offer"
    assert notification.url == f"/inbox/{offer.conversation_id}/?message={offer.message_id}"


def test_withdrawing_tells_the_buyer(buyer, seller):
    offer = offer_to(buyer, seller)
    orders.withdraw_offer(seller=seller, offer=offer)
    with pytest.raises(Conflict):
        orders.withdraw_offer(seller=seller, offer=offer)

    notification = the_one(Kind.ORDER_UPDATED, buyer)
    assert notification.title == "Sam Seller withdrew their offer"
    assert notification.dedupe_key == f"offer:{offer.pk}:withdrawn"


def test_an_expired_offer_tells_both_once(buyer, seller):
    offer = offer_to(buyer, seller)
    CustomOffer.objects.filter(pk=offer.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    assert orders.expire_offers() == 1
    assert orders.expire_offers() == 0  # beat runs again

    rows = of_kind(Kind.OFFER_EXPIRED)
    assert sorted((n.recipient_id, n.title) for n in rows) == sorted(
        [(seller.pk, "Your offer to Bella Buyer expired"), (buyer.pk, "Sam Seller's offer expired")]
    )
    for notification in rows:
        assert opens_for(notification.recipient, notification.url)


# --- orders --------------------------------------------------------------------------------------


def test_requirements_tell_the_seller(buyer, seller):
    order = an_order(buyer, seller)
    orders.submit_requirements(buyer=buyer, order=order, requirements="Blue and gold,\n  two concepts")
    with pytest.raises(Conflict):
        orders.submit_requirements(buyer=buyer, order=order, requirements="Again")

    notification = the_one(Kind.REQUIREMENTS_SUBMITTED, seller)
    assert notification.title == f"Bella Buyer submitted the requirements for #{order.number}"
    assert notification.body == "Blue and gold, two concepts"


def test_each_delivery_and_each_revision_is_told_once(buyer, seller):
    order = an_order(buyer, seller, revisions=2)

    orders.deliver_order(seller=seller, order=order, message="First draft")
    with pytest.raises(Conflict):
        orders.deliver_order(seller=seller, order=order, message="First draft")  # delivered already
    orders.request_revision(buyer=buyer, order=order, reason="Bigger letters")
    orders.deliver_order(seller=seller, order=order, message="Second draft")
    orders.request_revision(buyer=buyer, order=order, reason="Now in green")
    orders.deliver_order(seller=seller, order=order, message="Third draft")

    delivered = of_kind(Kind.ORDER_DELIVERED)
    assert [(n.recipient_id, n.body) for n in delivered] == [
        (buyer.pk, "First draft"),
        (buyer.pk, "Second draft"),
        (buyer.pk, "Third draft"),
    ]
    assert delivered[0].title == f"Sam Seller delivered order #{order.number}"
    assert len({n.dedupe_key for n in delivered}) == 3
    revisions = of_kind(Kind.REVISION_REQUESTED)
    assert [(n.recipient_id, n.body) for n in revisions] == [
        (seller.pk, "Bigger letters"),
        (seller.pk, "Now in green"),
    ]
    assert opens_for(buyer, delivered[-1].url) and opens_for(seller, revisions[-1].url)


def test_completing_tells_the_seller(buyer, seller):
    order = make_completed_order(buyer, seller)
    with pytest.raises(Conflict):
        orders.complete_order(buyer=buyer, order=order)

    notification = the_one(Kind.ORDER_COMPLETED, seller)
    assert notification.title == f"Bella Buyer completed order #{order.number}"
    assert [n.recipient_id for n in of_kind(Kind.ORDER_DELIVERED)] == [buyer.pk]


@pytest.mark.parametrize("by", ["buyer", "seller"])
def test_a_cancellation_tells_the_other_side(by, buyer, seller):
    order = an_order(buyer, seller)
    actor, other = (buyer, seller) if by == "buyer" else (seller, buyer)

    orders.cancel_order(user=actor, order=order, reason="Plans changed")
    with pytest.raises(Conflict):
        orders.cancel_order(user=actor, order=order, reason="Plans changed")

    notification = the_one(Kind.ORDER_UPDATED, other)
    assert notification.title == f"{actor.profile.display_name} cancelled order #{order.number}"
    assert notification.body == "Plans changed"


def test_a_review_tells_the_reviewed_person(buyer, seller):
    order = make_completed_order(buyer, seller)
    orders.leave_review(author=buyer, order=order, rating=5, text="Lovely work")
    with pytest.raises(Conflict):
        orders.leave_review(author=buyer, order=order, rating=4)

    notification = the_one(Kind.REVIEW_RECEIVED, seller)
    assert notification.title == "Bella Buyer left you a 5-star review"
    assert notification.body == "Lovely work"

    orders.leave_review(author=seller, order=order, rating=4)
    assert sorted(n.recipient_id for n in of_kind(Kind.REVIEW_RECEIVED)) == sorted([seller.pk, buyer.pk])


# --- messages ------------------------------------------------------------------------------------


def test_a_message_to_someone_away_tells_them_once(buyer, seller):
    conversation = buyer_opens_conversation(buyer, seller)
    client_id = uuid.uuid4()

    message, created = inbox.send_message(
        sender=seller, conversation=conversation, body="Hi Bella!\nYes, it is open.", client_id=client_id
    )
    _again, created_again = inbox.send_message(
        sender=seller, conversation=conversation, body="Hi Bella!\nYes, it is open.", client_id=client_id
    )

    assert created and not created_again  # a retry is the same message, and the same notification
    # (The seller was told of the buyer's first message; the buyer of this one.)
    [notification] = Notification.objects.filter(kind=Kind.NEW_MESSAGE, recipient=buyer)
    assert notification.title == "New message from Sam Seller"
    assert notification.body == "Hi Bella! Yes, it is open."
    assert notification.message_id == message.pk
    assert notification.dedupe_key == f"message:{message.pk}"
    assert notification.url == f"/inbox/{conversation.pk}/?message={message.pk}"
    assert opens_for(buyer, notification.url)
    assert not Notification.objects.filter(recipient=seller, message=message).exists()
    # The bell of an open tab would update live; it is in the buyer's event log.
    [event] = logged_events(buyer, event_type="notification.created")
    assert event["notification"]["id"] == notification.pk
    assert event["unread_count"] == 1


def test_someone_online_gets_no_message_notification(buyer, seller):
    conversation = buyer_opens_conversation(buyer, seller)
    go_online(buyer)

    inbox.send_message(sender=seller, conversation=conversation, body="You are here, I see")

    assert not Notification.objects.filter(recipient=buyer).exists()


def test_order_steps_are_not_also_new_messages(buyer, seller):
    order = an_order(buyer, seller)
    orders.deliver_order(seller=seller, order=order, message="Here it is")

    new_messages = Message.objects.filter(
        pk__in=Notification.objects.filter(kind=Kind.NEW_MESSAGE).values("message_id")
    )
    assert {m.kind for m in new_messages} == {Message.Kind.TEXT}  # the buyer's first message only


# --- moderation ----------------------------------------------------------------------------------


@pytest.fixture
def held(settings, buyer, seller):
    """The seller's answer, held for review (a phone number)."""
    settings.MODERATION_SCANNERS = TEST_SCANNERS
    conversation = buyer_opens_conversation(buyer, seller)
    message, _created = inbox.send_message(sender=seller, conversation=conversation, body=HELD_TEXT)
    assert message.status == Message.Status.HELD
    return message


def test_a_held_message_tells_its_sender_and_not_the_recipient(held, buyer, seller):
    notification = the_one(Kind.MESSAGE_HELD, seller)
    assert notification.title == "Your message to Bella Buyer is under review"
    assert notification.url == f"/inbox/{held.conversation_id}/?message={held.pk}"
    assert notification.dedupe_key == f"message:{held.pk}:held"
    assert not Notification.objects.filter(recipient=buyer, message=held).exists()


def test_an_edit_the_scanners_refuse_is_not_held(settings, buyer, seller):
    settings.MODERATION_SCANNERS = TEST_SCANNERS
    conversation = buyer_opens_conversation(buyer, seller)
    message, _created = inbox.send_message(sender=seller, conversation=conversation, body="Call me")

    with pytest.raises(Forbidden):
        inbox.edit_message(user=seller, message=message, body=HELD_TEXT)

    assert of_kind(Kind.MESSAGE_HELD) == []


def test_approval_tells_the_sender_and_delivers_the_new_message_to_the_recipient(held, buyer, seller, staff):
    moderation.approve_message(message=held, moderator=staff)
    with pytest.raises(Conflict):
        moderation.approve_message(message=held, moderator=staff)  # a second moderator

    approved = the_one(Kind.MESSAGE_APPROVED, seller)
    assert approved.title == "Your message to Bella Buyer was approved and delivered"
    arrived = Notification.objects.get(kind=Kind.NEW_MESSAGE, message=held)
    assert arrived.recipient_id == buyer.pk
    assert opens_for(buyer, arrived.url)


def test_an_approved_message_for_someone_online_only_tells_its_sender(held, buyer, seller, staff):
    go_online(buyer)
    moderation.approve_message(message=held, moderator=staff)

    the_one(Kind.MESSAGE_APPROVED, seller)
    assert not Notification.objects.filter(message=held).exists()


def test_rejection_tells_the_sender_why(held, buyer, seller, staff):
    moderation.reject_message(message=held, moderator=staff, reason="No phone numbers, please.")
    with pytest.raises(Conflict):
        moderation.reject_message(message=held, moderator=staff, reason="Again")

    notification = the_one(Kind.MESSAGE_REJECTED, seller)
    assert notification.title == "Your message to Bella Buyer was not delivered"
    assert notification.body == "No phone numbers, please."
    assert not Notification.objects.filter(recipient=buyer, message=held).exists()


def test_a_moderator_deciding_on_their_own_message_is_not_told(settings, staff, seller):
    settings.MODERATION_SCANNERS = TEST_SCANNERS
    _conversation, message, _created = inbox.start_conversation(
        sender=staff, recipient_username=seller.username, body=HELD_TEXT
    )
    moderation.approve_message(message=message, moderator=staff)

    assert of_kind(Kind.MESSAGE_APPROVED) == []
    assert Notification.objects.get(kind=Kind.NEW_MESSAGE, message=message).recipient_id == seller.pk


def an_hour_passes(user):
    Restriction.objects.filter(user=user).update(starts_at=timezone.now() - timedelta(minutes=61))


def test_the_ladder_tells_of_its_warning_and_suspension_steps(buyer):
    notice = rules.climb_ladder(buyer)
    assert notice.kind == "notice"
    assert rules.climb_ladder(buyer) == notice  # the same hour repeats its step
    an_hour_passes(buyer)
    warning = rules.climb_ladder(buyer)
    assert rules.climb_ladder(buyer) == warning
    an_hour_passes(buyer)
    suspension = rules.climb_ladder(buyer)
    assert suspension.kind == "suspension"

    told = the_one(Kind.WARNING, buyer)
    assert told.title == "You received a warning about messaging"
    assert told.body == warning.reason
    assert told.url == "/inbox/"
    suspended = the_one(Kind.SUSPENSION, buyer)
    assert suspended.title.startswith("Your account is suspended from messaging until ")
    assert suspended.title.endswith(("CET", "CEST"))  # in the buyer's time zone (Paris)
    assert suspended.dedupe_key == f"restriction:{suspension.pk}"


def test_an_admins_restrictions_are_told(buyer, staff):
    moderation.restrict(user=buyer, kind="warning", reason="Be kind to sellers.", moderator=staff)
    moderation.restrict(user=buyer, kind="suspension", reason="Off-platform payments.", moderator=staff)

    assert the_one(Kind.WARNING, buyer).body == "Be kind to sellers."
    permanent = the_one(Kind.SUSPENSION, buyer)
    assert permanent.title == "Your account is suspended from messaging"
    assert permanent.body == "Off-platform payments."
    assert not Notification.objects.filter(recipient=staff).exists()
