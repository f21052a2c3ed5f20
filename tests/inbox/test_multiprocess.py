"""Several daphne processes sharing Redis behave as one server, and a dropped socket loses nothing."""

import uuid

import httpx
import pytest
import websockets
from asgiref.sync import sync_to_async

from tests.factories import bearer_headers
from tests.helpers import receive_until

pytestmark = [
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_sync_thread_connections"),
]


def _token(user) -> str:
    return bearer_headers(user)["HTTP_AUTHORIZATION"].split(" ", 1)[1]


async def _socket(base_url: str, token: str):
    ws_url = base_url.replace("http", "ws", 1) + "/ws/events/"
    return await websockets.connect(
        ws_url, additional_headers={"Authorization": f"Bearer {token}", "Origin": base_url}, open_timeout=5
    )


async def test_message_sent_through_one_process_reaches_a_socket_on_another(
    daphne_servers, redis_url, redis_channel_layer, buyer, seller
):
    server_a = await sync_to_async(daphne_servers.start)(
        redis_url=redis_url, redis_prefix=redis_channel_layer
    )
    server_b = await sync_to_async(daphne_servers.start)(
        redis_url=redis_url, redis_prefix=redis_channel_layer
    )
    seller_token, buyer_token = await sync_to_async(_token)(seller), await sync_to_async(_token)(buyer)

    seller_socket = await _socket(server_a, seller_token)
    hello = await receive_until(seller_socket, "hello")
    assert hello["user"] == "seller"

    async with httpx.AsyncClient(
        base_url=server_b, headers={"Authorization": f"Bearer {buyer_token}"}
    ) as client:
        response = await client.post(
            "/api/v1/conversations", json={"recipient": "seller", "body": "Hi from B"}
        )
    assert response.status_code == 201, response.text

    event = await receive_until(seller_socket, "message.created")
    assert event["message"]["body"] == "Hi from B"
    assert event["message"]["sender"] == "buyer"
    assert event["unread_count"] == 1
    assert event["cursor"] > hello["cursor"]
    await seller_socket.close()


async def test_reconnect_with_since_returns_each_missed_message_exactly_once(
    daphne_servers, redis_url, redis_channel_layer, buyer, seller
):
    server = await sync_to_async(daphne_servers.start)(redis_url=redis_url, redis_prefix=redis_channel_layer)
    seller_token, buyer_token = await sync_to_async(_token)(seller), await sync_to_async(_token)(buyer)
    buyer_client = httpx.AsyncClient(base_url=server, headers={"Authorization": f"Bearer {buyer_token}"})
    seller_client = httpx.AsyncClient(base_url=server, headers={"Authorization": f"Bearer {seller_token}"})

    seller_socket = await _socket(server, seller_token)
    await receive_until(seller_socket, "hello")
    start = await buyer_client.post("/api/v1/conversations", json={"recipient": "seller", "body": "first"})
    conversation_id = start.json()["id"]
    live = await receive_until(seller_socket, "message.created")
    last_seen_cursor = live["cursor"]
    await seller_socket.close()

    missed = [f"while you were away {i}" for i in range(6)]
    for body in missed:
        sent = await buyer_client.post(
            f"/api/v1/conversations/{conversation_id}/messages",
            json={"body": body, "client_id": str(uuid.uuid4())},
        )
        assert sent.status_code == 201
    # A retry of the last send (same client_id) must not show up as a seventh message.
    retry_id = str(uuid.uuid4())
    for _ in range(2):
        await buyer_client.post(
            f"/api/v1/conversations/{conversation_id}/messages",
            json={"body": "retried once", "client_id": retry_id},
        )

    seller_socket = await _socket(server, seller_token)
    hello = await receive_until(seller_socket, "hello")
    gap = await seller_client.get("/api/v1/events", params={"since": last_seen_cursor})
    assert gap.status_code == 200
    page = gap.json()
    bodies = [e["message"]["body"] for e in page["items"] if e["type"] == "message.created"]
    assert bodies == [*missed, "retried once"]
    cursors = [e["cursor"] for e in page["items"]]
    assert cursors == list(range(last_seen_cursor + 1, hello["cursor"] + 1))
    assert page["next_cursor"] is None

    # After the gap is filled, new messages arrive live again with the next cursor.
    await buyer_client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"body": "back live", "client_id": str(uuid.uuid4())},
    )
    event = await receive_until(seller_socket, "message.created")
    assert event["message"]["body"] == "back live"
    assert event["cursor"] == hello["cursor"] + 1
    await seller_socket.close()
    await buyer_client.aclose()
    await seller_client.aclose()
