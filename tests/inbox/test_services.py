"""inbox.services: every write of the inbox. One transaction each; events logged per user and
pushed to open sockets only after commit; a refused write leaves nothing behind."""

import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inbox.models import Conversation, Event, EventLogHead, Membership, Message
from inbox.selectors import events_since
from inbox.services import (
    announce_typing,
    get_or_create_conversation,
    mark_read,
    prune_event_log,
    send_message,
    start_conversation,
)
from marketplace.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound
from tests.helpers import listen, logged_events, received

MESSAGE_KEYS = {"id", "conversation_id", "sender", "body", "status", "client_id", "created_at", "edited_at"}


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def conversation(buyer, seller):
    return get_or_create_conversation(user=buyer, other_user=seller)


def membership(user, conversation) -> Membership:
    return Membership.objects.get(user=user, conversation=conversation)


def stored_state() -> dict:
    """Everything a refused write must leave exactly as it was."""
    return {
        "conversations": list(
            Conversation.objects.order_by("pk").values_list("pk", "last_message_id", "last_message_at")
        ),
        "memberships": list(
            Membership.objects.order_by("pk").values_list(
                "pk", "unread_count", "last_read_message_id", "last_message_at"
            )
        ),
        "messages": list(Message.objects.order_by("pk").values_list("pk", "body")),
        "events": list(Event.objects.order_by("pk").values_list("user_id", "cursor", "type")),
        "heads": list(EventLogHead.objects.order_by("user_id").values_list("user_id", "last_cursor")),
    }


def send(sender, conversation, body="hello", client_id=None) -> Message:
    message, created = send_message(sender=sender, conversation=conversation, body=body, client_id=client_id)
    assert created
    return message


# --- conversations -----------------------------------------------------------------------


def test_one_conversation_per_pair_whoever_opens_it(buyer, seller):
    first = get_or_create_conversation(user=buyer, other_user=seller)
    again = get_or_create_conversation(user=seller, other_user=buyer)

    assert again.pk == first.pk
    assert Conversation.objects.count() == 1
    memberships = Membership.objects.filter(conversation=first)
    assert {m.user_id: m.other_user_id for m in memberships} == {buyer.pk: seller.pk, seller.pk: buyer.pk}
    assert [m.unread_count for m in memberships] == [0, 0]


def test_nobody_opens_a_conversation_with_themselves(buyer):
    with pytest.raises(InvalidInput) as refused:
        get_or_create_conversation(user=buyer, other_user=buyer)

    assert refused.value.code == "self_conversation"
    assert not Conversation.objects.exists()
    assert not Membership.objects.exists()


def test_start_conversation_opens_it_and_sends_the_first_message(buyer, seller):
    conversation, message, created = start_conversation(
        sender=buyer, recipient_username="seller", body="Can you draw a logo for my bakery?"
    )

    assert created
    assert message.conversation_id == conversation.pk
    assert message.sender_id == buyer.pk
    assert message.body == "Can you draw a logo for my bakery?"
    assert message.status == Message.Status.VISIBLE
    assert membership(seller, conversation).unread_count == 1
    assert membership(buyer, conversation).unread_count == 0


def test_starting_again_from_either_side_reuses_the_conversation(buyer, seller):
    first, _, _ = start_conversation(sender=buyer, recipient_username="seller", body="one")
    second, _, created_second = start_conversation(sender=buyer, recipient_username="seller", body="two")
    third, _, created_third = start_conversation(sender=seller, recipient_username="buyer", body="three")

    assert first.pk == second.pk == third.pk
    assert created_second and created_third
    assert Conversation.objects.count() == 1
    assert list(Message.objects.filter(conversation=first).order_by("pk").values_list("body", flat=True)) == [
        "one",
        "two",
        "three",
    ]


def test_start_conversation_replayed_with_its_client_id_sends_once(buyer, seller):
    client_id = uuid.uuid4()
    conversation, message, created = start_conversation(
        sender=buyer, recipient_username="seller", body="hi", client_id=client_id
    )
    again, replayed, created_again = start_conversation(
        sender=buyer, recipient_username="seller", body="hi", client_id=client_id
    )

    assert (created, created_again) == (True, False)
    assert (again.pk, replayed.pk) == (conversation.pk, message.pk)
    assert Message.objects.count() == 1
    assert membership(seller, conversation).unread_count == 1


@pytest.mark.parametrize("username", ["nobody", "closed", "sel\x00ler", ""])
def test_writing_to_an_unknown_or_closed_account_is_not_found(buyer, user_factory, username):
    closed = user_factory("closed")
    closed.is_active = False
    closed.save(update_fields=["is_active"])
    before = stored_state()

    with pytest.raises(NotFound) as refused:
        start_conversation(sender=buyer, recipient_username=username, body="hello?")

    assert refused.value.code == "unknown_recipient"
    assert stored_state() == before


def test_writing_to_yourself_is_refused_and_stores_nothing(buyer):
    with pytest.raises(InvalidInput) as refused:
        start_conversation(sender=buyer, recipient_username="buyer", body="note to self")

    assert refused.value.code == "self_conversation"
    assert stored_state()["conversations"] == []
    assert stored_state()["messages"] == []
    assert stored_state()["events"] == []


# --- sending -------------------------------------------------------------------------------


def test_send_updates_last_message_and_both_unread_counts(buyer, seller, conversation):
    send(buyer, conversation, "first")
    second = send(buyer, conversation, "second")

    conversation.refresh_from_db()
    assert conversation.last_message_id == second.pk
    assert conversation.last_message_at == second.created_at
    sellers, buyers = membership(seller, conversation), membership(buyer, conversation)
    assert (sellers.unread_count, sellers.last_read_message_id) == (2, None)
    assert (buyers.unread_count, buyers.last_read_message_id) == (0, second.pk)
    assert sellers.last_message_at == buyers.last_message_at == second.created_at

    reply = send(seller, conversation, "reply")

    conversation.refresh_from_db()
    assert conversation.last_message_id == reply.pk
    sellers, buyers = membership(seller, conversation), membership(buyer, conversation)
    # Answering means you read what you answer.
    assert (sellers.unread_count, sellers.last_read_message_id) == (0, reply.pk)
    assert (buyers.unread_count, buyers.last_read_message_id) == (1, second.pk)


def test_body_is_stored_exactly_as_written(buyer, conversation):
    body = "  <b>Price?</b> 👋\n\nsecond line with trailing spaces   "

    message = send(buyer, conversation, body)

    message.refresh_from_db()
    assert message.body == body


def test_a_body_of_exactly_the_maximum_length_is_accepted(buyer, conversation):
    body = "x" * settings.MESSAGE_MAX_LENGTH

    message = send(buyer, conversation, body)

    assert len(Message.objects.get(pk=message.pk).body) == settings.MESSAGE_MAX_LENGTH


def test_same_client_id_twice_stores_one_message_and_tells_nobody_twice(buyer, seller, conversation):
    client_id = uuid.uuid4()
    first, created_first = send_message(
        sender=buyer, conversation=conversation, body="hi", client_id=client_id
    )
    events_after_first = stored_state()["events"]

    # A retry (lost response, double click) even with edited text returns the original.
    again, created_again = send_message(
        sender=buyer, conversation=conversation, body="hi (edited)", client_id=client_id
    )

    assert (created_first, created_again) == (True, False)
    assert again.pk == first.pk
    assert again.body == "hi"
    assert Message.objects.count() == 1
    assert membership(seller, conversation).unread_count == 1
    assert stored_state()["events"] == events_after_first


def test_client_id_reused_in_another_conversation_is_a_conflict(buyer, seller, stranger, conversation):
    client_id = uuid.uuid4()
    send(buyer, conversation, "for the seller", client_id=client_id)
    other = get_or_create_conversation(user=buyer, other_user=stranger)
    before = stored_state()

    with pytest.raises(Conflict) as refused:
        send_message(sender=buyer, conversation=other, body="for the stranger", client_id=client_id)

    assert refused.value.code == "client_id_reused"
    assert refused.value.status == 409
    assert stored_state() == before
    assert not Message.objects.filter(conversation=other).exists()


def test_client_ids_belong_to_their_sender(buyer, seller, conversation):
    client_id = uuid.uuid4()
    mine = send(buyer, conversation, "from the buyer", client_id=client_id)

    theirs, created = send_message(
        sender=seller, conversation=conversation, body="from the seller", client_id=client_id
    )

    assert created
    assert theirs.pk != mine.pk
    assert Message.objects.count() == 2


@pytest.mark.usefixtures("everyone_online")
def test_each_send_logs_one_event_per_participant_with_cursors_one_apart(buyer, seller, conversation):
    bodies = ["one", "two", "three"]
    messages = [send(buyer, conversation, body) for body in bodies]
    messages.append(send(seller, conversation, "four"))

    seller_events, buyer_events = logged_events(seller), logged_events(buyer)

    assert [e["cursor"] for e in seller_events] == [1, 2, 3, 4]
    assert [e["cursor"] for e in buyer_events] == [1, 2, 3, 4]
    for events in (seller_events, buyer_events):
        assert {e["type"] for e in events} == {"message.created"}
        assert {e["conversation_id"] for e in events} == {conversation.pk}
        assert [e["message"]["id"] for e in events] == [m.pk for m in messages]
        assert [e["message"]["body"] for e in events] == [*bodies, "four"]
        assert all(set(e["message"]) >= MESSAGE_KEYS for e in events)
    # Each event carries the receiver's own unread count at that moment.
    assert [e["unread_count"] for e in seller_events] == [1, 2, 3, 0]
    assert [e["unread_count"] for e in buyer_events] == [0, 0, 0, 1]
    assert EventLogHead.objects.get(user=seller).last_cursor == 4
    assert seller_events[0]["message"]["sender"] == "buyer"
    assert seller_events[0]["message"]["client_id"] == str(messages[0].client_id)


@pytest.mark.usefixtures("everyone_online")
def test_cursors_are_per_user_and_have_no_gaps_across_conversations(buyer, seller, stranger, conversation):
    with_stranger = get_or_create_conversation(user=stranger, other_user=seller)
    send(buyer, conversation, "b1")
    send(stranger, with_stranger, "s1")
    send(stranger, with_stranger, "s2")
    send(buyer, conversation, "b2")
    mark_read(user=seller, conversation=with_stranger)

    assert [e["cursor"] for e in logged_events(seller)] == [1, 2, 3, 4, 5]
    assert [e["cursor"] for e in logged_events(buyer)] == [1, 2]
    assert [e["cursor"] for e in logged_events(stranger)] == [1, 2, 3]
    assert [e["message"]["body"] for e in logged_events(buyer)] == ["b1", "b2"]


TOO_LONG = "x" * (settings.MESSAGE_MAX_LENGTH + 1)
BAD_BODIES = [
    pytest.param("", "empty_body", id="empty"),
    pytest.param(" \n\t  ", "empty_body", id="whitespace-only"),
    pytest.param(TOO_LONG, "body_too_long", id="over-max-length"),
    pytest.param("before\x00after", "invalid_body", id="nul"),
    pytest.param(None, "invalid_body", id="none"),
    pytest.param(42, "invalid_body", id="int"),
    pytest.param(b"bytes", "invalid_body", id="bytes"),
    pytest.param(["a list"], "invalid_body", id="list"),
]


@pytest.mark.parametrize(("body", "code"), BAD_BODIES)
def test_a_bad_body_is_refused_and_nothing_is_stored(buyer, seller, conversation, body, code):
    send(buyer, conversation, "an earlier message")
    before = stored_state()

    with pytest.raises(InvalidInput) as refused:
        send_message(sender=buyer, conversation=conversation, body=body, client_id=uuid.uuid4())

    assert refused.value.code == code
    assert refused.value.status == 422
    assert stored_state() == before


@pytest.mark.parametrize(("body", "code"), BAD_BODIES)
def test_a_bad_first_message_opens_no_conversation(buyer, seller, body, code):
    with pytest.raises(InvalidInput) as refused:
        start_conversation(sender=buyer, recipient_username="seller", body=body)

    assert refused.value.code == code
    assert stored_state() == {
        "conversations": [],
        "memberships": [],
        "messages": [],
        "events": [],
        "heads": [],
    }


def test_unverified_sender_can_neither_start_nor_reply(user_factory, buyer, seller):
    newcomer = user_factory("newcomer", seller=True, verified=False)

    with pytest.raises(Forbidden) as refused_start:
        start_conversation(sender=newcomer, recipient_username="seller", body="hi")
    assert refused_start.value.code == "email_unverified"
    assert not Conversation.objects.exists()

    # A buyer may write to the new seller first; the newcomer still has to confirm their email
    # to answer.
    conversation, _, _ = start_conversation(sender=buyer, recipient_username="newcomer", body="welcome!")
    before = stored_state()
    with pytest.raises(Forbidden) as refused_reply:
        send_message(sender=newcomer, conversation=conversation, body="thanks")
    assert refused_reply.value.code == "email_unverified"
    assert stored_state() == before


def test_deactivated_sender_cannot_send(buyer, seller, conversation):
    send(buyer, conversation, "before closing my account")
    buyer.is_active = False
    buyer.save(update_fields=["is_active"])
    before = stored_state()

    with pytest.raises(Forbidden) as refused:
        send_message(sender=buyer, conversation=conversation, body="after")

    assert refused.value.code == "account_inactive"
    assert stored_state() == before


def test_nobody_can_write_to_a_closed_account(buyer, seller, conversation):
    send(buyer, conversation, "are you there?")
    seller.is_active = False
    seller.save(update_fields=["is_active"])
    before = stored_state()

    with pytest.raises(Forbidden) as refused:
        send_message(sender=buyer, conversation=conversation, body="hello?")

    assert refused.value.code == "recipient_inactive"
    assert stored_state() == before


def test_a_stranger_cannot_send_into_someone_elses_conversation(buyer, stranger, conversation):
    send(buyer, conversation, "private")
    before = stored_state()

    with pytest.raises(NotFound):
        send_message(sender=stranger, conversation=conversation, body="let me in")

    assert stored_state() == before


# --- reading ----------------------------------------------------------------------------------


def test_mark_read_clears_unread_and_tells_both_participants(buyer, seller, conversation):
    send(buyer, conversation, "one")
    last = send(buyer, conversation, "two")
    seller_cursor, buyer_cursor = logged_events(seller)[-1]["cursor"], logged_events(buyer)[-1]["cursor"]

    result = mark_read(user=seller, conversation=conversation)

    assert (result.unread_count, result.last_read_message_id) == (0, last.pk)
    stored = membership(seller, conversation)
    assert (stored.unread_count, stored.last_read_message_id) == (0, last.pk)
    expected = {
        "type": "conversation.read",
        "conversation_id": conversation.pk,
        "reader": "seller",
        "last_read_message_id": last.pk,
        "unread_count": 0,
    }
    assert logged_events(seller)[-1] == {**expected, "cursor": seller_cursor + 1}
    # The buyer learns it too: that is their "Seen".
    assert logged_events(buyer)[-1] == {**expected, "cursor": buyer_cursor + 1}


def test_reading_again_with_nothing_new_changes_nothing(buyer, seller, conversation):
    send(buyer, conversation, "one")
    mark_read(user=seller, conversation=conversation)
    before = stored_state()

    result = mark_read(user=seller, conversation=conversation)

    assert result.unread_count == 0
    assert stored_state() == before


def test_reading_an_empty_conversation_changes_nothing(buyer, conversation):
    before = stored_state()

    result = mark_read(user=buyer, conversation=conversation)

    assert (result.unread_count, result.last_read_message_id) == (0, None)
    assert stored_state() == before


def test_partial_read_up_to_a_message(buyer, seller, conversation):
    first = send(buyer, conversation, "one")
    second = send(buyer, conversation, "two")
    third = send(buyer, conversation, "three")

    result = mark_read(user=seller, conversation=conversation, up_to_message_id=second.pk)

    assert (result.unread_count, result.last_read_message_id) == (1, second.pk)
    assert logged_events(seller)[-1]["unread_count"] == 1
    assert logged_events(buyer)[-1]["last_read_message_id"] == second.pk

    # Reading an earlier position never moves the marker back, and tells nobody.
    before = stored_state()
    result = mark_read(user=seller, conversation=conversation, up_to_message_id=first.pk)
    assert (result.unread_count, result.last_read_message_id) == (1, second.pk)
    assert stored_state() == before

    # An id past the end reads everything there is.
    result = mark_read(user=seller, conversation=conversation, up_to_message_id=third.pk + 1000)
    assert (result.unread_count, result.last_read_message_id) == (0, third.pk)
    assert membership(seller, conversation).unread_count == 0


def test_a_stranger_cannot_mark_a_conversation_read(buyer, stranger, conversation):
    send(buyer, conversation, "private")
    before = stored_state()

    with pytest.raises(NotFound):
        mark_read(user=stranger, conversation=conversation)

    assert stored_state() == before


# --- pushes to open sockets -------------------------------------------------------------------


def test_a_send_is_pushed_to_both_users_only_after_commit(
    channel_layer, buyer, seller, conversation, django_capture_on_commit_callbacks
):
    seller_tab, buyer_tab = listen(channel_layer, seller), listen(channel_layer, buyer)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        message = send(buyer, conversation, "pushed after commit")
        assert received(channel_layer, seller_tab) == []
        assert received(channel_layer, buyer_tab) == []
    assert callbacks

    seller_pushes = received(channel_layer, seller_tab)
    assert seller_pushes == logged_events(seller)
    assert seller_pushes[0]["type"] == "message.created"
    assert seller_pushes[0]["message"]["id"] == message.pk
    assert seller_pushes[0]["message"]["body"] == "pushed after commit"
    # The sender's other tabs hear it too.
    assert received(channel_layer, buyer_tab) == logged_events(buyer)


def test_a_read_is_pushed_after_commit(
    channel_layer, buyer, seller, conversation, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # the send commits (and publishes) first
        message = send(buyer, conversation, "did you see this?")
    buyer_tab = listen(channel_layer, buyer)

    with django_capture_on_commit_callbacks(execute=True):
        mark_read(user=seller, conversation=conversation)
        assert received(channel_layer, buyer_tab) == []

    pushes = received(channel_layer, buyer_tab)
    assert [(p["type"], p["reader"], p["last_read_message_id"]) for p in pushes] == [
        ("conversation.read", "seller", message.pk)
    ]


def test_a_rolled_back_send_pushes_nothing_and_stores_nothing(
    channel_layer, buyer, seller, conversation, django_capture_on_commit_callbacks
):
    seller_tab = listen(channel_layer, seller)

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        send(buyer, conversation, "announced but never committed")
        raise RuntimeError("the surrounding work failed")

    assert callbacks == []
    assert received(channel_layer, seller_tab) == []
    assert not Message.objects.exists()
    assert not Event.objects.exists()
    assert membership(seller, conversation).unread_count == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("everyone_online")
def test_with_real_commits_a_push_follows_the_commit_and_a_rollback_is_silent(channel_layer, buyer, seller):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    seller_tab = listen(channel_layer, seller)

    with transaction.atomic():
        send(buyer, conversation, "committed")
        assert received(channel_layer, seller_tab) == []
    assert [p["message"]["body"] for p in received(channel_layer, seller_tab)] == ["committed"]

    with pytest.raises(RuntimeError), transaction.atomic():
        send(buyer, conversation, "rolled back")
        raise RuntimeError("the surrounding work failed")
    assert received(channel_layer, seller_tab) == []
    assert list(Message.objects.values_list("body", flat=True)) == ["committed"]
    assert [e["cursor"] for e in logged_events(seller)] == [1]


def test_typing_reaches_only_the_other_person_and_is_not_logged(channel_layer, buyer, seller, conversation):
    seller_tab, buyer_tab = listen(channel_layer, seller), listen(channel_layer, buyer)

    announce_typing(user=buyer, conversation=conversation)

    assert received(channel_layer, seller_tab) == [
        {"type": "typing", "conversation_id": conversation.pk, "user": "buyer", "cursor": None}
    ]
    assert received(channel_layer, buyer_tab) == []
    assert not Event.objects.exists()


# --- pruning the event log --------------------------------------------------------------------


def _age_events(*, user, through_cursor: int, days: int) -> None:
    Event.objects.filter(user=user, cursor__lte=through_cursor).update(
        created_at=timezone.now() - timedelta(days=days)
    )


def test_a_pruned_cursor_is_gone_and_later_ones_still_read(buyer, seller, stranger, conversation):
    for body in ("old one", "old two", "recent"):
        send(buyer, conversation, body)
    for user in (buyer, seller):
        _age_events(user=user, through_cursor=2, days=settings.EVENT_LOG_RETENTION_DAYS + 1)
    other = get_or_create_conversation(user=stranger, other_user=seller)
    send(stranger, other, "fresh")

    deleted = prune_event_log()

    assert deleted == 4
    assert [e["cursor"] for e in logged_events(buyer)] == [3]
    for since in (0, 1):
        with pytest.raises(Gone) as gone:
            events_since(user=buyer, since=since)
        assert gone.value.status == 410
        assert gone.value.code == "resync_required"
    page = events_since(user=buyer, since=2)
    assert [e.as_dict()["message"]["body"] for e in page.items] == ["recent"]
    # Someone whose events are all recent keeps them.
    assert [e.cursor for e in events_since(user=stranger, since=0).items] == [1]

    assert prune_event_log() == 0
    # Cursors continue after pruning; none is handed out twice.
    send(buyer, conversation, "after pruning")
    assert [e["cursor"] for e in logged_events(buyer)] == [3, 4]


@pytest.mark.usefixtures("everyone_online")
def test_prune_keeps_events_younger_than_the_given_age(buyer, seller, conversation):
    send(buyer, conversation, "one")
    send(buyer, conversation, "two")
    _age_events(user=buyer, through_cursor=1, days=2)

    assert prune_event_log(older_than=timedelta(days=3)) == 0
    assert prune_event_log(older_than=timedelta(days=1)) == 1

    assert [e["cursor"] for e in logged_events(buyer)] == [2]
    assert [e["cursor"] for e in logged_events(seller)] == [1, 2]
    with pytest.raises(Gone):
        events_since(user=buyer, since=0)
    assert [e.cursor for e in events_since(user=seller, since=0).items] == [1, 2]
