"""The transactional outbox: what must follow a commit is written with it, and published even if
the writing process dies right after the commit, or Redis is down when it tries."""

import asyncio
import json
import os
import re
import subprocess
import sys
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from inbox.events import user_group
from inbox.models import Message
from inbox.services.messaging import send_message
from notifications.models import Notification
from outbox import services as outbox
from outbox.models import Entry
from tests.factories import buyer_opens_conversation
from tests.servers import PROJECT_DIR, shared_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.needs_redis]

call = sync_to_async


def subprocess_env(redis_url: str, prefix: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="marketplace.settings",
        DATABASE_URL=shared_database_url(),
        REDIS_URL=redis_url,
        CHANNEL_LAYER_PREFIX=prefix,
        # One buyer writing 100 times in a minute would be held as a new account's burst.
        MODERATION_NEW_ACCOUNT_BURST="1000",
    )
    return env


async def run(*args: str, env: dict) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, output.decode()


class Tab:
    """An open tab's channel in a group, collecting what arrives. (A receive that times out would
    unsubscribe the channel, so one receive loop runs until the end.)"""

    def __init__(self, layer, channel: str):
        self.layer, self.channel, self.events = layer, channel, []
        self.task = asyncio.create_task(self._collect())

    @classmethod
    async def open(cls, group: str) -> "Tab":
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        return cls(layer, channel)

    async def _collect(self):
        while True:
            self.events.append((await self.layer.receive(self.channel))["event"])

    async def wait_for(self, count: int, timeout: float) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # and anything extra (a duplicate) that would follow
        self.task.cancel()
        return self.events


async def test_a_process_killed_between_commit_and_publish_loses_nothing(
    redis_channel_layer, redis_url, buyer, seller
):
    conversation = await call(buyer_opens_conversation)(buyer, seller)
    seller_tab = await Tab.open(user_group(seller.pk))
    env = subprocess_env(redis_url, redis_channel_layer)

    code, output = await run(
        "tests/outbox/sender.py", str(conversation.pk), buyer.username, "100", "--die-after-commit", env=env
    )

    assert code == -9, output  # killed, not exited
    sent = json.loads(output.splitlines()[-1])["ids"]
    stored = Message.objects.filter(pk__in=sent, status=Message.Status.VISIBLE)
    assert await call(stored.count)() == 100
    await asyncio.sleep(0.5)
    assert seller_tab.events == []  # nobody was told
    assert await call(Entry.objects.filter(kind=Entry.Kind.GROUP_SEND).count)() >= 100

    code, output = await run("manage.py", "relay_outbox", "--once", env=env)

    assert code == 0, output
    events = await seller_tab.wait_for(200, timeout=20)  # each message, and its notification
    delivered = [event["message"]["id"] for event in events if event["type"] == "message.created"]
    assert sorted(delivered) == sorted(sent), [event["type"] for event in events]  # 100 of 100, once
    assert await call(Entry.objects.count)() == 0
    # The Celery work went out too: the seller (away) was notified of each message, and every
    # notification was fanned out.
    notified = Notification.objects.filter(recipient=seller, message_id__in=sent)
    assert await call(notified.count)() == 100
    assert await call(notified.filter(fanned_out_at__isnull=True).count)() == 0


async def test_relays_running_side_by_side_publish_each_entry_once(redis_channel_layer, redis_url):
    tab = await Tab.open("outbox-test")
    await call(Entry.objects.bulk_create)(
        Entry(
            kind=Entry.Kind.GROUP_SEND,
            payload={"messages": [["outbox-test", {"type": "event.forward", "event": {"n": number}}]]},
        )
        for number in range(600)
    )
    env = subprocess_env(redis_url, redis_channel_layer)

    results = await asyncio.gather(
        *(run("manage.py", "relay_outbox", "--once", "--batch", "25", env=env) for _ in range(3))
    )

    assert [code for code, _ in results] == [0, 0, 0], results
    counts = [int(output.split("published ")[-1]) for _, output in results]
    assert sum(counts) == 600
    assert sum(1 for count in counts if count > 0) >= 2  # they really ran side by side
    numbers = [event["n"] for event in await tab.wait_for(600, timeout=10)]
    assert sorted(numbers) == list(range(600))


def test_a_push_that_failed_waits_and_goes_out_when_redis_is_back(settings, buyer, seller, redis_url):
    conversation = buyer_opens_conversation(buyer, seller)
    down = {"hosts": ["redis://127.0.0.1:1"], "prefix": "outbox-down"}
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": down}
    }

    message, _ = send_message(sender=buyer, conversation=conversation, body="are you there?")

    waiting = list(Entry.objects.filter(kind=Entry.Kind.GROUP_SEND))
    assert waiting  # the message's events (and the seller's bell) for both participants
    assert all(entry.available_at > timezone.now() and entry.attempts == 1 for entry in waiting)
    assert outbox.relay() == 0  # nothing is due before the short wait

    up = {"hosts": [redis_url], "prefix": "outbox-up"}
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": up}
    }
    Entry.objects.update(available_at=timezone.now())  # the wait is over

    assert outbox.relay() == len(waiting)
    assert not Entry.objects.exists()
    assert Message.objects.get(pk=message.pk).body == "are you there?"


def test_a_task_for_a_broker_that_is_down_waits_without_holding_the_send(buyer, seller, redis_url):
    conversation = buyer_opens_conversation(buyer, seller)
    env = subprocess_env(redis_url, "outbox-broker-down")
    env["CELERY_BROKER_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there

    output = subprocess.run(
        [sys.executable, "tests/outbox/sender.py", str(conversation.pk), buyer.username, "3"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    result = json.loads(output.splitlines()[-1])

    # None waited for the broker: its default publish retries would hold each send ~6 s. (The
    # first send also loads the task modules; the figure under load is in docs/RELIABILITY.md.)
    assert max(result["seconds"][1:]) < 2.5
    assert Message.objects.filter(pk__in=result["ids"]).count() == 3
    tasks = list(Entry.objects.filter(kind=Entry.Kind.TASK))
    assert {entry.payload["name"] for entry in tasks} >= {"inbox.record_for_response_figures"}
    assert all(entry.attempts == 1 and entry.last_error.startswith("broker") for entry in tasks)


def test_what_a_rolled_back_transaction_wrote_is_never_published(buyer, seller):
    from django.db import transaction

    conversation = buyer_opens_conversation(buyer, seller)
    with pytest.raises(RuntimeError), transaction.atomic():
        send_message(sender=buyer, conversation=conversation, body="never mind")
        assert Entry.objects.exists()  # written with the message...
        raise RuntimeError

    assert not Entry.objects.exists()  # ...and gone with it
    assert not Message.objects.filter(body="never mind").exists()


def test_what_one_transaction_wrote_is_published_in_one_claim(buyer, seller):
    """A send writes several entries (its pushes, the seller's bell, tasks); after the commit
    they are claimed, published and deleted together, not one round trip each."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    conversation = buyer_opens_conversation(buyer, seller)
    with CaptureQueriesContext(connection) as queries:
        send_message(sender=buyer, conversation=conversation, body="are you free tomorrow?")

    statements = [q["sql"] for q in queries.captured_queries]
    commit = statements.index("COMMIT")
    written = sum(1 for sql in statements[:commit] if sql.startswith('INSERT INTO "outbox_entry"'))
    claims = [sql for sql in statements if sql.startswith("UPDATE outbox_entry")]
    assert written >= 3
    # The first statement after the commit claims them all. (The tasks run eagerly in tests,
    # inside the publishing, and what they write is claimed after.)
    assert statements[commit + 1] == claims[0]
    assert re.search(r"AND id IN \(([\d, ]+)\)", claims[0]).group(1).count(",") + 1 == written
    assert not Entry.objects.exists()


def test_entries_of_a_rolled_back_savepoint_are_dropped_and_the_rest_published(buyer, seller):
    from django.db import transaction

    conversation = buyer_opens_conversation(buyer, seller)
    with transaction.atomic():
        send_message(sender=buyer, conversation=conversation, body="this one stays")
        with pytest.raises(RuntimeError), transaction.atomic():
            send_message(sender=buyer, conversation=conversation, body="this one is taken back")
            raise RuntimeError
        assert Entry.objects.exists()

    assert not Entry.objects.exists()  # what survived was published after the commit
    assert list(Message.objects.filter(conversation=conversation).values_list("body", flat=True)) == [
        "Hi, is your gig available?",
        "this one stays",
    ]
