"""A held message live, on a real daphne process and the Redis channel layer: the recipient's open
socket gets nothing while it waits for a moderator, and gets it as a new message once approved;
the sender's socket shows it under review, then delivered (or refused, with the reason)."""

import asyncio
import json
import time

import httpx
import pytest
from asgiref.sync import sync_to_async

from inbox import services
from inbox.models import Message
from moderation import services as moderation
from moderation.scanners import INVITE_DETAIL
from tests.helpers import receive_until
from tests.inbox.test_multiprocess import _socket, _token

pytestmark = [
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_sync_thread_connections"),
]

# An invitation to another app, under MODERATION_BLAST_MIN_LENGTH: the daphne process's
# scanners hold it whatever its spam counters say.
HELD = "Just whatsapp me, it's quicker"
QUIET = 1.0  # seconds of silence that count as "nothing arrived"


async def frames_within(ws, seconds: float) -> list[dict]:
    """Every frame the socket receives in the next `seconds`."""
    frames = []
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), remaining)))
        except TimeoutError:
            break
    return frames


@pytest.fixture
async def live(daphne_servers, redis_url, redis_channel_layer, buyer, seller, user_factory):
    """A daphne server sharing this test's Redis prefix; the buyer's first message is in, and both
    have a socket open. The seller's reply goes through the server's API, scanners included."""
    server = await sync_to_async(daphne_servers.start)(redis_url=redis_url, redis_prefix=redis_channel_layer)
    conversation, _message, _created = await sync_to_async(services.start_conversation)(
        sender=buyer, recipient_username="seller", body="Hello, is the logo gig open?"
    )
    seller_token, buyer_token = await sync_to_async(_token)(seller), await sync_to_async(_token)(buyer)
    sockets = {"buyer": await _socket(server, buyer_token), "seller": await _socket(server, seller_token)}
    for ws in sockets.values():
        await receive_until(ws, "hello")
    moderator = await sync_to_async(user_factory)("moderator")
    async with httpx.AsyncClient(base_url=server, headers={"Authorization": f"Bearer {seller_token}"}) as api:
        yield {"conversation": conversation, "api": api, "moderator": moderator, **sockets}
    for ws in sockets.values():
        await ws.close()


async def send_held(live) -> tuple[dict, dict]:
    """The seller sends HELD over the API: (the API's answer, the seller's live event)."""
    response = await live["api"].post(
        f"/api/v1/conversations/{live['conversation'].pk}/messages", json={"body": HELD}
    )
    assert response.status_code == 201, response.text
    sent = response.json()
    event = await receive_until(
        live["seller"], "message.created", match=lambda frame: frame["message"]["id"] == sent["id"]
    )
    return sent, event


async def test_a_held_message_reaches_the_recipient_live_only_once_approved(live):
    sent, held_event = await send_held(live)

    assert sent["status"] == "held"
    assert (held_event["message"]["body"], held_event["message"]["status"]) == (HELD, "held")
    assert held_event["message"]["moderation_reason"].startswith(INVITE_DETAIL)
    # The sender's event is out; nothing about the message reaches the recipient.
    assert [f for f in await frames_within(live["buyer"], QUIET) if f["type"].startswith("message.")] == []

    message = await sync_to_async(Message.objects.get)(pk=sent["id"])
    await sync_to_async(moderation.approve_message)(message=message, moderator=live["moderator"])

    delivered = await receive_until(live["buyer"], "message.created")
    assert (delivered["message"]["id"], delivered["message"]["body"], delivered["message"]["sender"]) == (
        sent["id"],
        HELD,
        "seller",
    )
    assert (delivered["message"]["status"], delivered["message"]["moderation_reason"]) == ("visible", None)
    assert delivered["unread_count"] == 1
    approved = await receive_until(live["seller"], "message.updated")
    assert (approved["message"]["id"], approved["message"]["status"]) == (sent["id"], "visible")
    assert approved["message"]["moderation_reason"] is None
    assert approved["cursor"] > held_event["cursor"]


async def test_a_held_message_a_moderator_refuses_never_reaches_the_recipient(live):
    sent, held_event = await send_held(live)

    message = await sync_to_async(Message.objects.get)(pk=sent["id"])
    await sync_to_async(moderation.reject_message)(
        message=message, moderator=live["moderator"], reason="Keep the conversation on the platform."
    )

    refused = await receive_until(live["seller"], "message.updated")
    assert (
        refused["message"]["id"],
        refused["message"]["status"],
        refused["message"]["moderation_reason"],
    ) == (
        sent["id"],
        "rejected",
        "Keep the conversation on the platform.",
    )
    assert refused["cursor"] > held_event["cursor"]
    assert [f for f in await frames_within(live["buyer"], QUIET) if f["type"].startswith("message.")] == []
