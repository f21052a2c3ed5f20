"""`seed_demo --messages N` (inbox.bulk_seed): a large generated inbox that reads, through the
API, like one the services built."""

import pytest
from django.core.management import call_command
from django.db.models import Max

from inbox import bulk_seed
from inbox.models import Conversation, Membership, Message
from marketplace.accounts.models import User
from tests.factories import bearer_headers, buyer_opens_conversation

pytestmark = pytest.mark.django_db

N = 2_000


def _get(client, user, path, **params):
    response = client.get(f"/api/v1{path}", params, **bearer_headers(user))
    assert response.status_code == 200, response.content
    return response.json()


def test_inbox_shows_right_unread_counts_and_last_messages(client):
    report = bulk_seed.seed_messages(N)

    assert Message.objects.count() == N
    assert Conversation.objects.count() == report.conversations == N // 100
    seller = User.objects.get(username=bulk_seed.BUSY_SELLER)
    page = _get(client, seller, "/conversations", limit=50)
    conversations = page["items"]
    assert len(conversations) == Membership.objects.filter(user=seller).count()
    assert [c["last_message_at"] for c in conversations] == sorted(
        (c["last_message_at"] for c in conversations), reverse=True
    )
    for item in conversations:
        messages = Message.objects.filter(conversation_id=item["id"])
        assert item["last_message"]["id"] == messages.aggregate(last=Max("id"))["last"]
        read_up_to = item["last_read_message_id"] or 0
        assert item["unread_count"] == messages.filter(pk__gt=read_up_to).exclude(sender=seller).count()
        assert item["needs_reply"] == (item["last_message"]["sender"] == item["other_user"]["username"])

    buyer = User.objects.get(username=bulk_seed.LIGHT_BUYER)
    assert len(_get(client, buyer, "/conversations", limit=50)["items"]) == 10


def test_history_pages_through_the_deep_conversation(client):
    report = bulk_seed.seed_messages(N)
    seller = User.objects.get(username=bulk_seed.BUSY_SELLER)
    deep = Membership.objects.get(user=seller, other_user__username=bulk_seed.LIGHT_BUYER)
    assert Message.objects.filter(conversation_id=deep.conversation_id).count() == report.deep_messages

    seen, cursor = [], None
    while True:
        page = _get(
            client, seller, f"/conversations/{deep.conversation_id}/messages", limit=200,
            **({"cursor": cursor} if cursor else {}),
        )  # fmt: skip
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == report.deep_messages
    assert seen == sorted(seen, reverse=True)


def test_search_finds_the_rare_tokens(client):
    bulk_seed.seed_messages(N)
    seller = User.objects.get(username=bulk_seed.BUSY_SELLER)
    for token in bulk_seed.RARE_TOKENS:
        hits = _get(client, seller, "/search", q=token)["items"]
        assert len(hits) >= 3
        assert all(token in hit["message"]["body"] for hit in hits)


def test_seeding_again_replaces_only_the_generated_data(buyer, seller):
    conversation = buyer_opens_conversation(buyer, seller)
    call_command("seed_demo", messages=N)
    call_command("seed_demo", messages=1_000)

    generated = bulk_seed.generated_users()
    assert Message.objects.filter(sender__in=generated).count() == 1_000
    assert Conversation.objects.filter(user_low__in=generated).count() == 10
    assert Message.objects.filter(conversation=conversation).count() == 1

    call_command("seed_demo", clear_generated=True)
    assert not generated.exists()
    assert Conversation.objects.count() == 1
