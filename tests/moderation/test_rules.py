"""Who may write to whom: the seller cold-messaging rule, the buyer's switch, the messaging limit
and its ladder, suspensions. Every refusal names the rule and what to do."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from inbox import services
from inbox.models import Conversation, Message
from marketplace.accounts.models import User
from marketplace.errors import Forbidden
from moderation import services as moderation
from moderation.models import Restriction
from tests.factories import bearer_headers, make_completed_order

# The new-contact counter moves when a message commits: these tests really commit.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def quiet_scanners_and_fresh_counters(settings):
    settings.MODERATION_SCANNERS = []
    settings.MODERATION_NEW_CONTACTS_PER_HOUR = 3
    settings.MODERATION_NEW_ACCOUNT_NEW_CONTACTS_PER_HOUR = 1
    settings.MODERATION_NEW_ACCOUNT_DAYS = 3
    cache.clear()
    yield
    cache.clear()


def age(user, days: int):
    User.objects.filter(pk=user.pk).update(date_joined=timezone.now() - timedelta(days=days))
    user.refresh_from_db()
    return user


def write(sender, recipient_username, body="Hello"):
    return services.start_conversation(sender=sender, recipient_username=recipient_username, body=body)


def refused(action) -> Forbidden:
    with pytest.raises(Forbidden) as caught:
        action()
    return caught.value


# --- sellers do not start conversations with buyers -----------------------------------------


def test_a_seller_cannot_write_first_to_a_buyer(buyer, seller):
    error = refused(lambda: write(seller, "buyer"))
    assert error.code == "seller_cannot_start"
    assert "wait for this buyer to contact you" in error.detail
    assert not Conversation.objects.exists()


def test_a_seller_answers_a_buyer_who_wrote_first(buyer, seller):
    conversation, _, _ = write(buyer, "seller", "Hi, can you help?")
    message, created = services.send_message(sender=seller, conversation=conversation, body="Of course")
    assert created and message.status == "visible"


def test_a_seller_may_write_first_to_a_buyer_they_have_an_order_with(buyer, seller):
    make_completed_order(buyer, seller)
    # The order's conversation has no message from the buyer, only order updates.
    Message.objects.filter(sender=buyer, kind="text").delete()
    conversation = Conversation.objects.get()
    message, _ = services.send_message(sender=seller, conversation=conversation, body="Any news?")
    assert message.status == "visible"


def test_a_buyer_can_switch_off_sellers_they_have_not_contacted(buyer, seller):
    make_completed_order(buyer, seller)
    Message.objects.filter(sender=buyer, kind="text").delete()
    buyer.profile.accepts_new_sellers = False
    buyer.profile.save()
    conversation = Conversation.objects.get()

    error = refused(
        lambda: services.send_message(sender=seller, conversation=conversation, body="Hello again")
    )

    assert error.code == "buyer_closed_to_new_sellers"
    assert "only from sellers they contacted first" in error.detail


def test_the_rule_reaches_the_api_as_a_clear_403(buyer, seller):
    response = Client().post(
        "/api/v1/conversations",
        {"recipient": "buyer", "body": "Special offer!"},
        content_type="application/json",
        **bearer_headers(seller),
    )
    assert response.status_code == 403
    assert response.json()["error"] == "seller_cannot_start"


def test_sellers_write_to_each_other_freely(seller, user_factory):
    other_seller = user_factory("designer", seller=True)
    _conversation, message, _ = write(seller, other_seller.username)
    assert message.status == "visible"


# --- the messaging limit and its ladder -------------------------------------------------------


def new_people(user_factory, count, start=0):
    return [user_factory(f"person{start + i}", seller=True) for i in range(count)]


def test_past_the_limit_new_people_are_refused_but_contacts_and_others_still_write(
    buyer, seller, user_factory
):
    age(buyer, 30)
    people = new_people(user_factory, 4)
    conversations = [write(buyer, person.username)[0] for person in people[:3]]

    error = refused(lambda: write(buyer, people[3].username))

    assert error.code == "messaging_limit"
    assert "Wait 60 minutes before writing to anyone outside your contacts" in error.detail
    assert Conversation.objects.count() == 3
    # Existing contacts keep working, in both directions.
    services.send_message(sender=buyer, conversation=conversations[0], body="Still here")
    services.send_message(sender=people[1], conversation=conversations[1], body="Hello back")
    # Someone new can still write to them.
    newcomer = user_factory("newcomer")
    _c, message, _ = write(newcomer, "buyer", "Hi buyer")
    assert message.status == "visible"
    assert Restriction.objects.get(user=buyer).kind == "notice"


def test_new_accounts_have_a_stricter_limit(buyer, user_factory):
    age(buyer, 1)
    first, second = new_people(user_factory, 2)
    write(buyer, first.username)
    assert refused(lambda: write(buyer, second.username)).code == "messaging_limit"


def test_a_refused_or_rejected_send_does_not_use_the_allowance(settings, buyer, user_factory):
    age(buyer, 30)
    settings.MODERATION_SCANNERS = ["tests.moderation.test_pipeline.words_scanner"]
    people = new_people(user_factory, 3)
    for person in people:
        write(buyer, person.username, "REJECTME")  # refused by the scanner: not a new contact
    assert cache.get(f"moderation:new-contacts:{buyer.pk}") is None
    for person in people:
        write(buyer, person.username, "A real hello")
    assert cache.get(f"moderation:new-contacts:{buyer.pk}") == 3


def an_hour_passes(user):
    cache.clear()  # the hour's counter expires
    Restriction.objects.filter(user=user).update(starts_at=timezone.now() - timedelta(minutes=61))


def test_reaching_the_limit_again_brings_a_warning_then_suspensions(buyer, user_factory):
    age(buyer, 30)
    people = new_people(user_factory, 13)

    steps = []
    for hour in range(3):
        if hour:
            an_hour_passes(buyer)
        for person in people[hour * 4 : hour * 4 + 3]:
            write(buyer, person.username)
        outsider = people[hour * 4 + 3].username
        error = refused(lambda outsider=outsider: write(buyer, outsider))
        steps.append((error.code, Restriction.objects.filter(user=buyer).latest("pk").kind))
        if hour == 0:
            # Trying again within the same hour repeats the notice; it does not climb.
            again = refused(lambda outsider=outsider: write(buyer, outsider))
            assert again.code == "messaging_limit"
            assert Restriction.objects.filter(user=buyer).count() == 1

    assert steps[0] == ("messaging_limit", "notice")
    assert steps[1] == ("messaging_limit", "warning")
    assert steps[2] == ("suspended", "suspension")
    assert refused(lambda: write(buyer, people[12].username)).code == "suspended"
    assert Restriction.objects.filter(user=buyer).count() == 3  # no further step while it lasts
    temporary = Restriction.objects.filter(user=buyer, kind="suspension").get()
    assert timedelta(hours=71) < temporary.ends_at - timezone.now() <= timedelta(hours=72)
    # A suspended user cannot write to anyone, contacts included.
    conversation = Conversation.objects.filter(memberships__user=buyer).first()
    error = refused(lambda: services.send_message(sender=buyer, conversation=conversation, body="Hello?"))
    assert error.code == "suspended"
    assert "until" in error.detail


def test_after_a_temporary_suspension_the_next_step_is_permanent(buyer, user_factory):
    age(buyer, 30)
    Restriction.objects.create(user=buyer, kind="notice", reason="r", ends_at=timezone.now())
    Restriction.objects.create(user=buyer, kind="warning", reason="r")
    Restriction.objects.create(
        user=buyer, kind="suspension", reason="r", ends_at=timezone.now() - timedelta(hours=1)
    )
    an_hour_passes(buyer)
    people = new_people(user_factory, 4)
    for person in people[:3]:
        write(buyer, person.username)

    error = refused(lambda: write(buyer, people[3].username))

    assert error.code == "suspended"
    assert "Contact support to appeal" in error.detail
    assert Restriction.objects.filter(user=buyer, kind="suspension", ends_at__isnull=True).exists()


def test_an_admin_lifts_any_step_and_it_stops_counting(buyer, user_factory, staff):
    age(buyer, 30)
    # The notice and the warning of earlier hours; this hour brings the suspension.
    Restriction.objects.create(user=buyer, kind="notice", reason="r", ends_at=timezone.now())
    Restriction.objects.create(user=buyer, kind="warning", reason="r")
    an_hour_passes(buyer)
    people = new_people(user_factory, 4)
    for person in people[:3]:
        write(buyer, person.username)
    refused(lambda: write(buyer, people[3].username))
    suspension = Restriction.objects.get(user=buyer, kind="suspension")

    moderation.lift_restriction(restriction=suspension, moderator=staff)
    cache.clear()  # the hour has passed

    _c, message, _ = write(buyer, people[3].username)
    assert message.status == "visible"
    suspension.refresh_from_db()
    assert suspension.lifted_by == staff


def test_an_admin_suspension_blocks_sending_with_its_reason(buyer, seller, staff):
    conversation, _, _ = write(buyer, "seller")
    moderation.restrict(
        user=buyer,
        kind="suspension",
        reason="Repeated off-platform payment requests.",
        moderator=staff,
        ends_at=timezone.now() + timedelta(days=2),
    )
    error = refused(lambda: services.send_message(sender=buyer, conversation=conversation, body="Hi"))
    assert error.code == "suspended"
    assert "Repeated off-platform payment requests." in error.detail
