"""An offer is acted on once: a double click, two tabs or a retry never make two orders.

The concurrent tests run two real transactions at the same moment, each in its own thread with
its own database connection (so on PostgreSQL they really overlap and meet at the offer's row;
on SQLite the write lock serialises them), released together by a barrier."""

import threading

import pytest
from django.db import connection

from inbox.models import Message
from inbox.services import get_or_create_conversation
from marketplace.accounts.models import User
from marketplace.errors import Conflict, DomainError
from orders import services
from orders.models import CustomOffer, Order, OrderEvent

ROUNDS = 5  # a few races per test: an unsafe accept would let two through in at least one


def make_offer(seller, conversation) -> CustomOffer:
    return services.create_offer(
        seller=seller, conversation=conversation, description="A logo", price=150, delivery_days=4
    )


def race(*actions) -> list:
    """Run each action(offer_id) in its own thread and connection, all released at once.
    Returns what each returned or raised, in the order given."""
    barrier = threading.Barrier(len(actions))
    outcomes: list = [None] * len(actions)

    def run(index, action):
        try:
            prepared = action()  # load what the request would load, on this thread's connection
            barrier.wait(timeout=10)
            outcomes[index] = prepared()
        except Exception as error:  # the outcome is what the test checks
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, action)) for i, action in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a racing transaction never finished (deadlock?)"
    return outcomes


def accept_as(buyer_id: int, offer_id: int):
    """What POST /offers/<id>/accept does: load the user and the offer, then accept."""

    def prepare():
        buyer = User.objects.get(pk=buyer_id)
        offer = CustomOffer.objects.select_related("message").get(pk=offer_id)
        return lambda: services.accept_offer(buyer=buyer, offer=offer)

    return prepare


def withdraw_as(seller_id: int, offer_id: int):
    def prepare():
        seller = User.objects.get(pk=seller_id)
        offer = CustomOffer.objects.select_related("message").get(pk=offer_id)
        return lambda: services.withdraw_offer(seller=seller, offer=offer)

    return prepare


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_accepts_make_exactly_one_order(buyer, seller):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)

    for _round in range(ROUNDS):
        offer = make_offer(seller, conversation)

        outcomes = race(accept_as(buyer.pk, offer.pk), accept_as(buyer.pk, offer.pk))

        orders = [outcome for outcome in outcomes if isinstance(outcome, Order)]
        conflicts = [outcome for outcome in outcomes if isinstance(outcome, Conflict)]
        assert (len(orders), len(conflicts)) == (1, 1), outcomes
        assert conflicts[0].code == "offer_accepted"
        assert conflicts[0].status == 409
        (order,) = orders
        assert list(Order.objects.filter(offer=offer)) == [order]
        assert list(OrderEvent.objects.filter(order=order).values_list("kind", flat=True)) == [
            "created",
            "payment",
        ]
        offer.refresh_from_db()
        assert offer.status == "accepted"
        card = Message.objects.get(pk=offer.message_id).card
        assert (card["status"], card["order_number"]) == ("accepted", order.number)

    assert Order.objects.count() == ROUNDS


@pytest.mark.django_db(transaction=True)
def test_an_accept_and_a_withdrawal_at_the_same_moment_have_one_winner(buyer, seller):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)

    for _round in range(ROUNDS):
        offer = make_offer(seller, conversation)

        accepted, withdrawn = race(accept_as(buyer.pk, offer.pk), withdraw_as(seller.pk, offer.pk))

        offer.refresh_from_db()
        card = Message.objects.get(pk=offer.message_id).card
        if isinstance(accepted, Order):
            assert isinstance(withdrawn, Conflict), withdrawn
            assert withdrawn.code == "offer_accepted"
            assert (offer.status, card["status"], card["order_number"]) == (
                "accepted",
                "accepted",
                accepted.number,
            )
            assert Order.objects.filter(offer=offer).count() == 1
        else:
            assert isinstance(accepted, Conflict), accepted
            assert accepted.code == "offer_withdrawn"
            assert isinstance(withdrawn, CustomOffer), withdrawn
            assert (offer.status, card["status"]) == ("withdrawn", "withdrawn")
            assert not Order.objects.filter(offer=offer).exists()


@pytest.mark.django_db
def test_a_second_accept_from_the_same_tab_is_a_conflict_and_changes_nothing(buyer, seller):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    offer = make_offer(seller, conversation)
    order = services.accept_offer(buyer=buyer, offer=offer)
    messages = Message.objects.count()

    with pytest.raises(Conflict) as second:
        services.accept_offer(buyer=buyer, offer=offer)  # the same (now stale) object, as a retry has

    assert (second.value.code, second.value.detail) == ("offer_accepted", "This offer was already accepted.")
    assert isinstance(second.value, DomainError)
    assert list(Order.objects.all()) == [order]
    assert OrderEvent.objects.count() == 2
    assert Message.objects.count() == messages
