"""A seller's auto-reply (sent once per conversation to a buyer's first contact, marked as
automatic, never counted as an answer) and quick responses (saved texts with placeholders)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inbox import selectors, services
from inbox.models import AutoReply, Membership, Message, QuickResponse, ResponseObligation
from inbox.payloads import conversation_payload
from marketplace.errors import Conflict, Forbidden, InvalidInput, NotFound
from orders import services as orders
from tests.factories import buyer_opens_conversation

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_after_commit(django_capture_on_commit_callbacks):
    """Deliver as production does: after-commit work (Celery tasks, eager here) runs."""

    def run(action, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return action(*args, **kwargs)

    return run


def thread(conversation) -> list[Message]:
    return list(Message.objects.filter(conversation=conversation).order_by("pk"))


def buyer_writes_first(run_after_commit, buyer, seller, body="Hi, is the logo gig open?"):
    return run_after_commit(buyer_opens_conversation, buyer, seller, body)


# --- auto-reply ------------------------------------------------------------------------------


def test_a_buyers_first_message_gets_the_sellers_auto_reply_with_the_name_filled(
    run_after_commit, buyer, seller
):
    services.save_auto_reply(
        user=seller,
        body="Hi {buyer_first_name}, thanks for writing! {seller_name} answers within a day.",
        enabled=True,
    )

    conversation = buyer_writes_first(run_after_commit, buyer, seller)

    first, auto = thread(conversation)
    assert first.sender == buyer and not first.is_automatic
    assert auto.sender == seller and auto.is_automatic
    assert auto.body == "Hi Bella, thanks for writing! Sam Seller answers within a day."
    conversation.refresh_from_db()
    assert conversation.last_message_id == auto.pk  # the buyer sees it arrive like any message


def test_after_an_auto_reply_the_buyers_message_is_still_unread_and_needs_the_sellers_reply(
    run_after_commit, buyer, seller
):
    services.save_auto_reply(user=seller, body="Thanks, I will answer soon.", enabled=True)
    conversation = buyer_writes_first(run_after_commit, buyer, seller)
    first, _auto = thread(conversation)

    sellers = Membership.objects.get(conversation=conversation, user=seller)
    assert sellers.unread_count == 1  # the seller has not read it: nobody did for them
    assert (sellers.last_read_message_id or 0) < first.pk  # so the buyer sees no "Seen"
    assert selectors.filter_counts(user=seller)["needs_reply"] == 1  # the answer is still owed
    assert selectors.filter_counts(user=buyer)["needs_reply"] == 0  # the buyer owes nothing
    as_seller = selectors.conversation_for_user(user=seller, conversation_id=conversation.pk, details=True)
    assert conversation_payload(as_seller, label_ids=[], other_last_read_message_id=None)["needs_reply"]


def test_an_auto_reply_leaves_the_sellers_draft_alone(run_after_commit, buyer, seller):
    conversation = buyer_writes_first(run_after_commit, buyer, seller)
    services.save_draft(user=seller, conversation=conversation, text="Let me think about the price")
    services.save_auto_reply(user=seller, body="Thanks, I will answer soon.", enabled=True)
    # A second buyer message: the seller has still not written, so the auto-reply goes now.
    run_after_commit(services.send_message, sender=buyer, conversation=conversation, body="Hello?")

    assert [m.is_automatic for m in thread(conversation)] == [False, False, True]
    assert (
        Membership.objects.get(conversation=conversation, user=seller).draft == "Let me think about the price"
    )


def test_the_auto_reply_is_sent_once_per_conversation(run_after_commit, buyer, seller):
    services.save_auto_reply(user=seller, body="Thanks, I will answer soon.", enabled=True)
    conversation = buyer_writes_first(run_after_commit, buyer, seller)

    for body in ("Are you there?", "Hello?"):
        run_after_commit(services.send_message, sender=buyer, conversation=conversation, body=body)
    # Even if the task runs again for the first message (a retried Celery task):
    services.send_auto_reply(trigger_message_id=thread(conversation)[0].pk)

    automatic = [m for m in thread(conversation) if m.is_automatic]
    assert len(automatic) == 1
    assert [m.body for m in thread(conversation)] == [
        "Hi, is the logo gig open?",
        "Thanks, I will answer soon.",
        "Are you there?",
        "Hello?",
    ]


def test_no_auto_reply_once_the_seller_has_answered_by_hand(run_after_commit, buyer, seller):
    conversation = buyer_writes_first(run_after_commit, buyer, seller)
    run_after_commit(services.send_message, sender=seller, conversation=conversation, body="Yes, open!")
    services.save_auto_reply(user=seller, body="Thanks, I will answer soon.", enabled=True)

    run_after_commit(services.send_message, sender=buyer, conversation=conversation, body="Great, how much?")

    assert not any(m.is_automatic for m in thread(conversation))


def test_a_switched_off_auto_reply_is_kept_but_not_sent(run_after_commit, buyer, seller, stranger):
    services.save_auto_reply(user=seller, body="Thanks, I will answer soon.", enabled=True)
    services.save_auto_reply(user=seller, body="Thanks, I will answer soon.", enabled=False)

    conversation = buyer_writes_first(run_after_commit, buyer, seller)

    assert len(thread(conversation)) == 1
    assert AutoReply.objects.get(user=seller).body == "Thanks, I will answer soon."


def test_the_auto_reply_never_counts_as_an_answer(run_after_commit, buyer, seller):
    services.save_auto_reply(user=seller, body="Thanks, I will answer soon.", enabled=True)
    conversation = buyer_writes_first(run_after_commit, buyer, seller)

    obligation = ResponseObligation.objects.get(conversation=conversation)
    assert obligation.answered_at is None  # still owed: only the seller's own reply answers it
    reply = run_after_commit(services.send_message, sender=seller, conversation=conversation, body="Yes!")[0]
    obligation.refresh_from_db()
    assert obligation.answer_id == reply.pk
    # The full recompute agrees.
    assert services.rebuild_obligations(seller=seller, dry_run=True).changed == 0


def test_buyers_do_not_send_auto_replies(run_after_commit, buyer, seller):
    with pytest.raises(Forbidden) as refused:
        services.save_auto_reply(user=buyer, body="Away for now", enabled=True)
    assert refused.value.code == "not_a_seller"
    assert not AutoReply.objects.exists()


def test_an_auto_reply_with_contact_details_is_refused_when_saved(seller):
    with pytest.raises(Forbidden) as refused:
        services.save_auto_reply(user=seller, body="Write me at sam.seller@gmail.com instead", enabled=True)
    assert refused.value.code == "text_refused"
    assert not AutoReply.objects.exists()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("", "empty_body"),
        ("   ", "empty_body"),
        ("Hi {buyer_nmae}!", "unknown_placeholder"),
        ("Your order {order_number} is next", "unknown_placeholder"),  # no order at a first contact
        ("x" * 5001, "body_too_long"),
    ],
)
def test_an_auto_reply_switched_on_needs_a_valid_text(seller, settings, body, code):
    settings.MESSAGE_MAX_LENGTH = 5000
    with pytest.raises(InvalidInput) as refused:
        services.save_auto_reply(user=seller, body=body, enabled=True)
    assert refused.value.code == code
    assert not AutoReply.objects.exists()


def test_no_auto_reply_when_the_seller_switched_it_off_meanwhile(
    django_capture_on_commit_callbacks, buyer, seller
):
    services.save_auto_reply(user=seller, body="Thanks, I will answer soon.", enabled=True)
    with django_capture_on_commit_callbacks() as queued:  # the task waits in the queue...
        conversation = buyer_opens_conversation(buyer, seller)
    services.save_auto_reply(user=seller, body="Thanks, I will answer soon.", enabled=False)
    for callback in queued:
        callback()

    assert [m.is_automatic for m in thread(conversation)] == [False]


def test_an_order_request_is_a_first_contact_too(run_after_commit, buyer, seller):
    services.save_auto_reply(user=seller, body="Thanks {buyer_name}, I am looking at it.", enabled=True)

    request = run_after_commit(
        orders.send_request,
        buyer=buyer,
        seller=seller,
        description="A fox logo, please",
        budget=50,
        deadline=timezone.localdate() + timedelta(days=10),
    )

    automatic = Message.objects.get(is_automatic=True)
    assert automatic.conversation_id == request.conversation_id
    assert automatic.body == "Thanks Bella Buyer, I am looking at it."


# --- quick responses -------------------------------------------------------------------------


def test_a_seller_saves_edits_and_deletes_quick_responses(seller):
    thanks = services.create_quick_response(user=seller, title="Thanks", body="Thanks {buyer_name}!")
    services.create_quick_response(user=seller, title="ask brief", body="Could you send the brief?")

    assert [q.title for q in selectors.quick_responses_of(user=seller)] == ["ask brief", "Thanks"]
    services.update_quick_response(quick_response=thanks, body="Many thanks {buyer_first_name}!")
    assert QuickResponse.objects.get(pk=thanks.pk).body == "Many thanks {buyer_first_name}!"
    services.delete_quick_response(quick_response=thanks)
    assert [q.title for q in selectors.quick_responses_of(user=seller)] == ["ask brief"]


def test_quick_response_titles_are_unique_per_seller_ignoring_case(seller, user_factory):
    services.create_quick_response(user=seller, title="Thanks", body="Thanks!")
    with pytest.raises(Conflict) as taken:
        services.create_quick_response(user=seller, title="THANKS", body="Thank you!")
    assert taken.value.code == "title_taken"
    other = services.create_quick_response(user=seller, title="Later", body="Later!")
    with pytest.raises(Conflict):
        services.update_quick_response(quick_response=other, title="thanks")
    assert QuickResponse.objects.get(pk=other.pk).title == "Later"
    another_seller = user_factory("another", seller=True)
    services.create_quick_response(user=another_seller, title="Thanks", body="Thanks!")


@pytest.mark.parametrize(
    ("title", "body", "code"),
    [
        ("", "Hello", "invalid_title"),
        ("x" * 61, "Hello", "invalid_title"),
        ("Hi", "", "empty_body"),
        ("Hi", "Hello {name}", "unknown_placeholder"),
        ("Hi", None, "invalid_body"),
    ],
)
def test_a_quick_response_needs_a_title_and_a_valid_text(seller, title, body, code):
    with pytest.raises(InvalidInput) as refused:
        services.create_quick_response(user=seller, title=title, body=body)
    assert refused.value.code == code
    assert not QuickResponse.objects.exists()


def test_quick_responses_are_a_seller_tool_and_private(seller, buyer, user_factory):
    with pytest.raises(Forbidden):
        services.create_quick_response(user=buyer, title="Hi", body="Hello")
    mine = services.create_quick_response(user=seller, title="Hi", body="Hello")
    other_seller = user_factory("other", seller=True)
    with pytest.raises(NotFound):
        selectors.quick_response_for_user(user=other_seller, quick_response_id=mine.pk)


def test_placeholders_are_filled_for_the_conversation_they_are_used_in(buyer, seller):
    conversation = buyer_opens_conversation(buyer, seller)
    services.create_quick_response(
        user=seller,
        title="Start",
        body="Hi {buyer_first_name}, {seller_name} here. Order {order_number} is next.",
    )
    services.create_quick_response(user=seller, title="Code", body='Use {"size": 2} and {Unknown} as is')
    membership = selectors.conversation_for_user(user=seller, conversation_id=conversation.pk, details=True)

    filled = {
        q.title: q.text
        for q in selectors.quick_responses_for_conversation(user=seller, membership=membership)
    }

    # No open order yet: {order_number} stays for the seller to fill in.
    assert filled["Start"] == "Hi Bella, Sam Seller here. Order {order_number} is next."
    assert filled["Code"] == 'Use {"size": 2} and {Unknown} as is'


def test_the_open_orders_number_fills_order_number(buyer, seller):
    conversation = buyer_opens_conversation(buyer, seller)
    offer = orders.create_offer(
        seller=seller, conversation=conversation, description="A logo", price=50, delivery_days=3
    )
    order = orders.accept_offer(buyer=buyer, offer=offer)
    services.create_quick_response(user=seller, title="Start", body="Order {order_number} started.")
    membership = selectors.conversation_for_user(user=seller, conversation_id=conversation.pk, details=True)

    [filled] = selectors.quick_responses_for_conversation(user=seller, membership=membership)

    assert filled.text == f"Order {order.number} started."


def test_a_seller_keeps_at_most_a_hundred_quick_responses(seller):
    QuickResponse.objects.bulk_create(
        [
            QuickResponse(user=seller, title=f"Reply {i}", body="Hello", updated_at=timezone.now())
            for i in range(100)
        ]
    )
    with pytest.raises(Conflict) as full:
        services.create_quick_response(user=seller, title="One more", body="Hello")
    assert full.value.code == "too_many_quick_responses"
    assert QuickResponse.objects.filter(user=seller).count() == 100
