"""inbox.selectors: keyset pages that walk everything once, refuse foreign cursors, and cost the
same number of queries however much data there is."""

import base64
import json

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox.models import Membership
from inbox.payloads import conversation_payload, message_payload
from inbox.selectors import conversation_for_user, events_since, inbox_page, thread_page
from inbox.services import get_or_create_conversation, mark_read, send_message, start_conversation
from marketplace.errors import InvalidInput, NotFound

# --- helpers -------------------------------------------------------------------------------


def walk(fetch, *, max_pages: int = 200) -> tuple[list, int]:
    """Follow next_cursor from the first page to the end: (all items in order, number of pages)."""
    items, cursor = [], None
    for pages in range(1, max_pages + 1):
        page = fetch(cursor)
        items.extend(page.items)
        if page.next_cursor is None:
            return items, pages
        cursor = page.next_cursor
    raise AssertionError(f"still a next_cursor after {max_pages} pages")


def write_to_new_sellers(buyer, user_factory, count: int, *, first: int = 0) -> list[int]:
    """The buyer writes to `count` new sellers, one after the other; returns the conversation ids."""
    ids = []
    for number in range(first, first + count):
        user_factory(f"seller{number:03d}", seller=True)
        conversation, _, _ = start_conversation(
            sender=buyer, recipient_username=f"seller{number:03d}", body=f"hello {number}"
        )
        ids.append(conversation.pk)
    return ids


def fill_thread(sender, conversation, count: int) -> list[int]:
    return [
        send_message(sender=sender, conversation=conversation, body=f"message {n}")[0].pk
        for n in range(count)
    ]


def count_queries(read):
    with CaptureQueriesContext(connection) as context:
        result = read()
    return len(context.captured_queries), result


def encoded(value) -> str:
    """A cursor in this server's encoding, carrying whatever `value` is."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# --- finding a conversation ------------------------------------------------------------------


def test_conversation_for_user_finds_a_participants_membership(buyer, seller):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)

    for user, other in ((buyer, seller), (seller, buyer)):
        found = conversation_for_user(user=user, conversation_id=str(conversation.pk))
        assert (found.user_id, found.other_user_id, found.conversation_id) == (
            user.pk,
            other.pk,
            conversation.pk,
        )


@pytest.mark.parametrize(
    "conversation_id", ["stranger", "unknown", "abc", None, "-1", "0", str(2**63), "9" * 30]
)
def test_conversation_for_user_tells_strangers_and_bad_ids_nothing(buyer, seller, stranger, conversation_id):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    if conversation_id == "stranger":
        conversation_id = conversation.pk
    elif conversation_id == "unknown":
        conversation_id = conversation.pk + 1000

    with pytest.raises(NotFound) as not_found:
        conversation_for_user(user=stranger, conversation_id=conversation_id)

    assert not_found.value.detail == "Conversation not found."


def test_conversation_for_an_anonymous_user_is_not_found(buyer, seller):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)

    with pytest.raises(NotFound):
        conversation_for_user(user=AnonymousUser(), conversation_id=conversation.pk)


# --- the inbox ---------------------------------------------------------------------------------


def test_inbox_pages_walk_every_conversation_once_most_recent_activity_first(buyer, user_factory):
    conversation_ids = write_to_new_sellers(buyer, user_factory, 23)
    # New activity in an old conversation brings it to the top.
    revived = conversation_ids[2]
    send_message(
        sender=buyer,
        conversation=Membership.objects.get(user=buyer, conversation_id=revived).conversation,
        body="any news?",
    )
    expected = [revived] + [cid for cid in reversed(conversation_ids) if cid != revived]

    memberships, pages = walk(lambda cursor: inbox_page(user=buyer, cursor=cursor, limit=5))

    assert [m.conversation_id for m in memberships] == expected
    assert pages == 5
    assert {m.user_id for m in memberships} == {buyer.pk}


def test_inbox_pages_break_ties_on_time_without_gaps_or_duplicates(buyer, user_factory):
    conversation_ids = write_to_new_sellers(buyer, user_factory, 12)
    # Many conversations with the very same last activity time (a bulk import, a coarse clock).
    Membership.objects.filter(user=buyer).update(last_message_at=timezone.now())

    memberships, pages = walk(lambda cursor: inbox_page(user=buyer, cursor=cursor, limit=5))

    assert [m.conversation_id for m in memberships] == list(reversed(conversation_ids))
    assert pages == 3


def test_a_page_that_ends_exactly_at_the_limit_has_no_next_cursor(buyer, user_factory):
    write_to_new_sellers(buyer, user_factory, 4)

    first = inbox_page(user=buyer, limit=4)

    assert len(first.items) == 4
    assert first.next_cursor is None


def test_the_inbox_holds_only_the_users_own_conversations_with_their_own_counts(
    buyer, seller, stranger, user_factory
):
    start_conversation(sender=buyer, recipient_username="seller", body="mine")
    start_conversation(sender=stranger, recipient_username="seller", body="not mine")
    start_conversation(sender=stranger, recipient_username="seller", body="still not mine")

    (buyers,) = inbox_page(user=buyer).items
    sellers = inbox_page(user=seller).items

    assert buyers.other_user == seller
    assert buyers.unread_count == 0
    assert [(m.other_user.username, m.unread_count) for m in sellers] == [("stranger", 2), ("buyer", 1)]
    assert inbox_page(user=user_factory("newcomer")).items == []


INVALID_INBOX_CURSORS = [
    pytest.param("not a cursor", id="garbage"),
    pytest.param("%%%%", id="not-base64"),
    pytest.param(base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(), id="not-utf8"),
    pytest.param(encoded([1, 2]), id="a-list"),
    pytest.param(encoded(None), id="null"),
    pytest.param(encoded({"id": 3}), id="no-time"),
    pytest.param(encoded({"at": "2025-01-01T00:00:00+00:00"}), id="no-id"),
    pytest.param(encoded({"at": "yesterday", "id": 3}), id="bad-time"),
    pytest.param(encoded({"at": 17, "id": 3}), id="time-not-text"),
    pytest.param(encoded({"at": "2025-01-01T00:00:00+00:00", "id": "x"}), id="bad-id"),
    pytest.param(encoded({"at": "2025-01-01T00:00:00+00:00", "id": None}), id="null-id"),
]


@pytest.mark.parametrize("cursor", INVALID_INBOX_CURSORS)
def test_inbox_refuses_a_cursor_it_did_not_hand_out(buyer, user_factory, cursor):
    write_to_new_sellers(buyer, user_factory, 2)

    with pytest.raises(InvalidInput) as refused:
        inbox_page(user=buyer, cursor=cursor)

    assert refused.value.code == "invalid_cursor"
    assert refused.value.status == 422


@pytest.mark.parametrize("limit", [0, -1, 101])
def test_inbox_refuses_a_limit_out_of_range(buyer, limit):
    with pytest.raises(InvalidInput) as refused:
        inbox_page(user=buyer, limit=limit)

    assert refused.value.code == "invalid_limit"


def test_inbox_cursor_can_go_in_a_query_string_as_is(buyer, user_factory):
    write_to_new_sellers(buyer, user_factory, 3)

    cursor = inbox_page(user=buyer, limit=1).next_cursor

    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert [m.other_user.username for m in inbox_page(user=buyer, cursor=cursor, limit=5).items] == [
        "seller001",
        "seller000",
    ]


# --- a thread ------------------------------------------------------------------------------------


def test_thread_pages_walk_back_through_every_message_once(buyer, seller, stranger):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    elsewhere = get_or_create_conversation(user=stranger, other_user=seller)
    message_ids = []
    for _ in range(10):
        message_ids += fill_thread(buyer, conversation, 2)
        message_ids += fill_thread(seller, conversation, 1)
        fill_thread(stranger, elsewhere, 1)
    membership = conversation_for_user(user=seller, conversation_id=conversation.pk)

    messages, pages = walk(lambda cursor: thread_page(membership=membership, cursor=cursor, limit=7))

    assert [m.pk for m in messages] == list(reversed(message_ids))
    assert pages == 5  # 30 messages, 7 a page
    assert {m.conversation_id for m in messages} == {conversation.pk}


def test_thread_after_an_id_returns_only_newer_messages_oldest_first(buyer, seller):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    message_ids = fill_thread(buyer, conversation, 8)
    membership = conversation_for_user(user=buyer, conversation_id=conversation.pk)

    page = thread_page(membership=membership, after=message_ids[4])
    limited = thread_page(membership=membership, after=message_ids[0], limit=3)
    caught_up = thread_page(membership=membership, after=message_ids[-1])

    assert [m.pk for m in page.items] == message_ids[5:]
    assert page.next_cursor is None
    assert [m.pk for m in limited.items] == message_ids[1:4]
    assert caught_up.items == []


@pytest.mark.parametrize("cursor", ["abc", "12abc", "1.5", "0x10"])
def test_thread_refuses_a_cursor_it_did_not_hand_out(buyer, seller, cursor):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    fill_thread(buyer, conversation, 2)
    membership = conversation_for_user(user=buyer, conversation_id=conversation.pk)

    with pytest.raises(InvalidInput) as refused:
        thread_page(membership=membership, cursor=cursor)

    assert refused.value.code == "invalid_cursor"


@pytest.mark.parametrize("limit", [0, 201])
def test_thread_refuses_a_limit_out_of_range(buyer, seller, limit):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    membership = conversation_for_user(user=buyer, conversation_id=conversation.pk)

    with pytest.raises(InvalidInput) as refused:
        thread_page(membership=membership, limit=limit)

    assert refused.value.code == "invalid_limit"


# --- the event log ----------------------------------------------------------------------------


@pytest.mark.usefixtures("everyone_online")
def test_events_page_forward_from_a_cursor(buyer, seller):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    fill_thread(buyer, conversation, 7)
    mark_read(user=seller, conversation=conversation)

    events, pages = walk(lambda since: events_since(user=seller, since=since or 0, limit=3))

    assert [e.cursor for e in events] == list(range(1, 9))
    assert [e.type for e in events] == ["message.created"] * 7 + ["conversation.read"]
    assert pages == 3
    assert events_since(user=seller, since=8).items == []
    assert [e.cursor for e in events_since(user=seller, since=6).items] == [7, 8]


def test_events_refuse_a_negative_cursor_or_a_limit_out_of_range(buyer):
    with pytest.raises(InvalidInput):
        events_since(user=buyer, since=-1)
    with pytest.raises(InvalidInput):
        events_since(user=buyer, since=0, limit=settings.EVENTS_PAGE_MAX + 1)
    with pytest.raises(InvalidInput):
        events_since(user=buyer, since=0, limit=0)


# --- query counts ---------------------------------------------------------------------------------


def test_inbox_costs_the_same_queries_at_10_and_200_conversations(buyer, user_factory):
    def read_inbox():
        # What the API does with a page: every field of every conversation.
        return [
            conversation_payload(m, label_ids=m.label_ids) for m in inbox_page(user=buyer, limit=100).items
        ]

    write_to_new_sellers(buyer, user_factory, 10)
    queries_at_10, small = count_queries(read_inbox)
    write_to_new_sellers(buyer, user_factory, 190, first=10)
    queries_at_200, large = count_queries(read_inbox)

    assert (len(small), len(large)) == (10, 100)
    assert large[0]["last_message"]["body"] == "hello 199"
    assert queries_at_10 == queries_at_200 == 4  # the page, last messages' files, reads, labels


def test_thread_costs_the_same_queries_at_10_and_200_messages(buyer, seller):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    membership = conversation_for_user(user=seller, conversation_id=conversation.pk)

    def read_thread():
        return [message_payload(m) for m in thread_page(membership=membership, limit=200).items]

    fill_thread(buyer, conversation, 5)
    fill_thread(seller, conversation, 5)
    queries_at_10, small = count_queries(read_thread)
    fill_thread(buyer, conversation, 95)
    fill_thread(seller, conversation, 95)
    queries_at_200, large = count_queries(read_thread)

    assert (len(small), len(large)) == (10, 200)
    assert {m["sender"] for m in large} == {"buyer", "seller"}
    assert queries_at_10 == queries_at_200 == 2  # the page and its messages' files


@pytest.mark.usefixtures("everyone_online")
def test_events_cost_the_same_queries_at_10_and_200_events(buyer, seller):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)

    def read_events():
        return [e.as_dict() for e in events_since(user=seller, since=0, limit=200).items]

    fill_thread(buyer, conversation, 10)
    queries_at_10, small = count_queries(read_events)
    fill_thread(buyer, conversation, 190)
    queries_at_200, large = count_queries(read_events)

    assert (len(small), len(large)) == (10, 200)
    assert queries_at_10 == queries_at_200
