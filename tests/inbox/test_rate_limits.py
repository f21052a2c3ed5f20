"""The send rate limit (MESSAGE_RATE_PER_MINUTE, inbox/services/limits.py) as users and clients
see it: beyond the quota a send is refused with 429 and a wait, nothing is stored, a retry of a
stored message still gets the original, and sending works again once the window has passed."""

import json
import logging
import time
import uuid

import pytest
from django.test import Client

from inbox.models import Message
from tests.factories import bearer_headers, buyer_opens_conversation

API = "/api/v1"


@pytest.fixture
def conversation(buyer, seller):
    return buyer_opens_conversation(buyer, seller)


def at_window_start(window: int, *, room: float = 3.0) -> None:
    """Windows are aligned on the clock: start where at least `room` seconds of one remain, so
    a burst of sends falls in one window."""
    left = window - time.time() % window
    if left < room:
        time.sleep(left + 0.01)


class Sender:
    def __init__(self, user, conversation):
        self.client = Client()
        self.headers = bearer_headers(user)
        self.conversation = conversation

    def send(self, body: str, client_id: uuid.UUID | None = None):
        response = self.client.post(
            f"{API}/conversations/{self.conversation.pk}/messages",
            data=json.dumps({"body": body, "client_id": str(client_id or uuid.uuid4())}),
            content_type="application/json",
            **self.headers,
        )
        assert response.status_code < 500, response.content
        return response


def assert_rate_limited(response, *, limit: int, window: int) -> int:
    assert response.status_code == 429, response.content
    body = response.json()
    assert body["error"] == "rate_limited"
    assert f"at most {limit} messages a minute" in body["detail"]
    assert "you can send again in" in body["detail"]
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= window and body["retry_after"] == retry_after
    return retry_after


def stored_bodies(user) -> list[str]:
    return list(Message.objects.filter(sender=user, body__startswith="burst").values_list("body", flat=True))


def test_one_account_gets_its_quota_and_nothing_beyond_it_is_stored(settings, buyer, seller, conversation):
    settings.MESSAGE_RATE_PER_MINUTE = 5
    at_window_start(settings.MESSAGE_RATE_WINDOW_SECONDS)
    sender = Sender(buyer, conversation)

    statuses = [sender.send(f"burst {n}").status_code for n in range(8)]

    assert statuses == [201] * 5 + [429] * 3
    assert sorted(stored_bodies(buyer)) == [f"burst {n}" for n in range(5)]
    assert_rate_limited(sender.send("burst 8"), limit=5, window=60)
    assert len(stored_bodies(buyer)) == 5
    # The quota is the account's own: the other participant still writes.
    assert Sender(seller, conversation).send("burst from the seller").status_code == 201


def test_a_retried_send_is_not_counted_and_gets_the_original_even_over_the_limit(
    settings, buyer, conversation
):
    settings.MESSAGE_RATE_PER_MINUTE = 3
    at_window_start(settings.MESSAGE_RATE_WINDOW_SECONDS)
    sender = Sender(buyer, conversation)
    first_id = uuid.uuid4()

    first = sender.send("burst first", first_id)
    assert first.status_code == 201
    # Two retries of the same send: the original, and the quota untouched.
    for _retry in range(2):
        replay = sender.send("burst first", first_id)
        assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
    assert sender.send("burst second").status_code == 201
    assert sender.send("burst third").status_code == 201
    assert_rate_limited(sender.send("burst fourth"), limit=3, window=60)

    # Over the limit, a retry still answers with the message it stored.
    replay = sender.send("burst first", first_id)
    assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
    assert sorted(stored_bodies(buyer)) == ["burst first", "burst second", "burst third"]


def test_sending_works_again_once_the_window_has_passed(settings, buyer, conversation):
    settings.MESSAGE_RATE_PER_MINUTE = 2
    settings.MESSAGE_RATE_WINDOW_SECONDS = 3
    at_window_start(3, room=2.5)  # three sends fit in the window even on a loaded machine
    sender = Sender(buyer, conversation)
    assert [sender.send(f"burst {n}").status_code for n in range(2)] == [201, 201]
    retry_after = assert_rate_limited(sender.send("burst refused"), limit=2, window=3)

    time.sleep(retry_after)

    assert sender.send("burst later").status_code == 201
    assert sorted(stored_bodies(buyer)) == ["burst 0", "burst 1", "burst later"]


def test_starting_a_conversation_counts_as_a_send(settings, buyer, seller, conversation):
    """POST /conversations to someone you already talk to is a send too, and is limited alike."""
    settings.MESSAGE_RATE_PER_MINUTE = 2
    at_window_start(settings.MESSAGE_RATE_WINDOW_SECONDS)
    client, headers = Client(), bearer_headers(buyer)

    def start(body):
        return client.post(
            f"{API}/conversations",
            data=json.dumps({"recipient": seller.username, "body": body, "client_id": str(uuid.uuid4())}),
            content_type="application/json",
            **headers,
        )

    assert [start(f"burst {n}").status_code for n in range(2)] == [201, 201]
    assert_rate_limited(start("burst refused"), limit=2, window=60)
    assert sorted(stored_bodies(buyer)) == ["burst 0", "burst 1"]


def test_the_composer_is_told_why_and_how_long_and_the_new_conversation_page_keeps_the_text(
    settings, buyer, seller, stranger, conversation
):
    settings.MESSAGE_RATE_PER_MINUTE = 1
    at_window_start(settings.MESSAGE_RATE_WINDOW_SECONDS)
    page = Client()
    page.force_login(buyer)

    def compose(body):
        return page.post(f"/inbox/{conversation.pk}/send/", {"body": body, "client_id": str(uuid.uuid4())})

    assert compose("burst allowed").status_code == 200
    refused = compose("burst refused")
    # The composer's script shows this detail under the text, which it keeps
    # (tests/e2e/test_inbox_survives_failed_sends_and_dropped_sockets.py).
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert "you can send again in" in refused.json()["detail"]

    written = "burst: a long question I typed to a new seller"
    new = page.post(
        f"/inbox/new/?to={stranger.username}",
        {"to": stranger.username, "body": written, "client_id": str(uuid.uuid4())},
    )
    assert new.status_code == 429
    html = new.content.decode()
    assert "you can send again in" in html
    assert written in html  # what they wrote is back in the form
    assert stored_bodies(buyer) == ["burst allowed"]


def test_with_redis_down_the_limit_fails_open_and_sends_still_work(settings, buyer, conversation, caplog):
    settings.MESSAGE_RATE_PER_MINUTE = 1
    settings.CACHES = {  # nothing listens on port 1: every cache call fails at once
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    sender = Sender(buyer, conversation)
    with caplog.at_level(logging.WARNING, logger="marketplace.ratelimit"):
        statuses = [sender.send(f"burst {n}").status_code for n in range(3)]

    assert statuses == [201, 201, 201]
    assert len(stored_bodies(buyer)) == 3
    assert "the cache is unavailable" in caplog.text
