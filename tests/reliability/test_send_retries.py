"""A send retried with its client_id stores one message, and every retry, even one sent at the
same moment as the original, is answered with that message (R2; bench/retries.py at scale)."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from inbox.models import Message
from marketplace.accounts.models import User
from tests.factories import bearer_headers, buyer_opens_conversation

pytestmark = [pytest.mark.needs_redis, pytest.mark.django_db(transaction=True)]

PAIRS = 10
SENDS = 30
RETRIES = 3
CONCURRENT_SENDS = 10
COPIES = 5


@pytest.fixture
def conversations(user_factory):
    """(token, conversation id) for both sides of PAIRS conversations, between old accounts (the
    server's new-account spam rules are not what this is about)."""
    senders = []
    for i in range(PAIRS):
        buyer = user_factory(f"rbuyer{i}")
        seller = user_factory(f"rseller{i}", seller=True)
        conversation = buyer_opens_conversation(buyer, seller)
        for user in (buyer, seller):
            token = bearer_headers(user)["HTTP_AUTHORIZATION"].split(" ", 1)[1]
            senders.append((token, conversation.pk))
    User.objects.update(date_joined=timezone.now() - timedelta(days=30))
    return senders


def _post(base_url: str, token: str, conversation_id: int, client_id: str, body: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/api/v1/conversations/{conversation_id}/messages",
        json={"body": body, "client_id": client_id},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_retries_and_concurrent_copies_store_one_message_and_answer_with_it(
    daphne_servers, redis_url, redis_channel_layer, conversations
):
    server = daphne_servers.start(redis_url=redis_url, redis_prefix=redis_channel_layer)
    answers: dict[str, list[httpx.Response]] = {}

    # First, on the fresh process: copies sent at the same moment (a client that gave up
    # waiting and sent again). One stores the message; the others get it.
    def copies(index: int):
        token, conversation_id = conversations[index % len(conversations)]
        client_id, body = str(uuid.uuid4()), f"all at once {index}"
        start = threading.Barrier(COPIES)

        def one(_):
            start.wait()
            return _post(server, token, conversation_id, client_id, body)

        with ThreadPoolExecutor(COPIES) as pool:
            answers[client_id] = list(pool.map(one, range(COPIES)))

    for index in range(CONCURRENT_SENDS):
        copies(index)

    # Then sends retried one after the other, as after a lost answer.
    def retried(index: int):
        token, conversation_id = conversations[index % len(conversations)]
        client_id, body = str(uuid.uuid4()), f"then again {index}"
        answers[client_id] = [
            _post(server, token, conversation_id, client_id, body) for _ in range(1 + RETRIES)
        ]

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(retried, range(SENDS)))

    statuses = sorted({r.status_code for rs in answers.values() for r in rs})
    assert statuses == [200, 201], [r.text for rs in answers.values() for r in rs if r.status_code >= 300][:3]
    stored = dict(Message.objects.filter(client_id__in=list(answers)).values_list("client_id", "id"))
    assert len(stored) == CONCURRENT_SENDS + SENDS
    for client_id, responses in answers.items():
        assert [r.status_code for r in responses].count(201) == 1, client_id
        assert {r.json()["id"] for r in responses} == {stored[uuid.UUID(client_id)]}
        assert {r.json()["client_id"] for r in responses} == {client_id}
    assert Message.objects.filter(client_id__in=list(answers)).count() == CONCURRENT_SENDS + SENDS
