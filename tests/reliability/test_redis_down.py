"""Redis going away under a real daphne process (R4 of ../shared/research/reliability.md): sends
keep answering fast and storing, live delivery comes back by itself, the outbox empties.

The server reaches Redis (channel layer, cache) through a fault proxy (bench/faultproxy.py);
the machine's Redis itself is never touched. `python -m bench.faults redis-down` is the long
version, with a Celery worker, the relay process and twenty pairs of clients.
"""

import asyncio
import json
import time
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
import websockets
from asgiref.sync import sync_to_async

from bench.faultproxy import FaultProxy
from inbox.models import Message
from outbox import services as outbox
from outbox.models import Entry
from tests.factories import bearer_headers, buyer_opens_conversation

pytestmark = [
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_sync_thread_connections"),
]


@pytest.fixture
def redis_proxy(redis_url):
    address = urlsplit(redis_url)
    proxy = FaultProxy(address.hostname or "127.0.0.1", address.port or 6379).start()
    yield proxy
    proxy.stop()


def _token(user) -> str:
    return bearer_headers(user)["HTTP_AUTHORIZATION"].split(" ", 1)[1]


async def _created_ids(ws, wanted: set[int], timeout: float) -> set[int]:
    """message.created ids arriving on the socket until all of `wanted` came (or the timeout)."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while not wanted <= seen and time.monotonic() < deadline:
        try:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
        except TimeoutError:
            continue
        if frame.get("type") == "message.created":
            seen.add(frame["message"]["id"])
    return seen


async def test_sends_keep_answering_while_redis_is_away_and_live_delivery_resumes(
    daphne_servers, redis_url, redis_channel_layer, redis_proxy, buyer, seller
):
    server = await sync_to_async(daphne_servers.start)(
        redis_url=redis_proxy.url(redis_url), redis_prefix=redis_channel_layer
    )
    conversation = await sync_to_async(buyer_opens_conversation)(buyer, seller)
    buyer_token, seller_token = await sync_to_async(_token)(buyer), await sync_to_async(_token)(seller)
    seller_socket = await websockets.connect(
        server.replace("http", "ws", 1) + "/ws/events/",
        additional_headers={"Authorization": f"Bearer {seller_token}"},
        open_timeout=5,
    )
    assert json.loads(await asyncio.wait_for(seller_socket.recv(), 5))["type"] == "hello"
    api = httpx.AsyncClient(base_url=server, headers={"Authorization": f"Bearer {buyer_token}"}, timeout=10)
    path = f"/api/v1/conversations/{conversation.pk}/messages"

    async def send(body):
        started = time.monotonic()
        response = await api.post(path, json={"body": body, "client_id": str(uuid.uuid4())})
        return response, time.monotonic() - started

    redis_proxy.down()
    during = []
    for n in range(4):
        response, took = await send(f"Sent while Redis is away, number {n}")
        assert response.status_code == 201, response.text
        assert took < 1.0, f"send {n} took {took:.2f} s"
        # Stored and delivered, not held because the spam counters could not be read.
        assert response.json()["status"] == "visible"
        during.append(response.json()["id"])
    health = (await api.get("/healthz")).json()
    assert health["checks"]["cache"]["ok"] is False

    redis_proxy.up()
    # Live delivery comes back without a restart: the server's subscriber reconnects and
    # re-subscribes the socket's group (a message published before that is not heard live: the
    # client's catch-up and the relay cover those).
    came_back, live = time.monotonic(), set()
    while not live and time.monotonic() - came_back < 10:
        response, took = await send("Are you back?")
        assert response.status_code == 201 and took < 1.0
        live = await _created_ids(seller_socket, {response.json()["id"]}, timeout=1.0)
    assert live, "no live frame within 10 s of Redis coming back"

    # What the writers could not publish waits in the outbox; the relay delivers it to the socket.
    deadline = time.monotonic() + 15
    while await sync_to_async(outbox.backlog)() and time.monotonic() < deadline:
        await sync_to_async(outbox.relay)()
        await sync_to_async(time.sleep)(0.3)
    assert await sync_to_async(Entry.objects.count)() == 0
    relayed = await _created_ids(seller_socket, set(during), timeout=5)
    assert set(during) <= relayed | live
    stored = await sync_to_async(set)(
        Message.objects.filter(conversation=conversation).values_list("pk", flat=True)
    )
    assert set(during) <= stored
    await seller_socket.close()
    await api.aclose()
