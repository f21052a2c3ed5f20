"""The /ws/events/ consumer through the full ASGI stack (origin check, session and bearer auth),
on the real Redis channel layer and cache.

The socket is a fast path: these tests also show, for real, that a push can be lost and that the
event log still holds what the socket missed, with cursors that let a client see the gap.
"""

import asyncio
import json
import time

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from inbox import selectors, services
from inbox.consumers import CLOSE_UNAUTHENTICATED, MAX_FRAME_CHARS, MAX_WATCHED_USERS
from inbox.events import user_group
from inbox.models import Event, Message
from marketplace.accounts.services import issue_api_token, revoke_api_token
from marketplace.asgi import application
from outbox.models import Entry as OutboxEntry
from tests.helpers import logged_events

pytestmark = [
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_sync_thread_connections"),
]

ORIGIN = (b"origin", b"http://testserver")
WAIT = 5  # seconds to wait for a frame that must come
QUIET = 0.5  # seconds of silence that count as "nothing arrived"


# --- helpers -------------------------------------------------------------------------------------


@sync_to_async
def session_cookie(user) -> tuple[bytes, bytes]:
    """The Cookie header a browser logged in as `user` sends."""
    client = Client()
    client.force_login(user)
    sessionid = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={sessionid}".encode())


@sync_to_async
def bearer(user) -> tuple[bytes, bytes]:
    _token, raw = issue_api_token(user=user)
    return (b"authorization", f"Bearer {raw}".encode())


call = database_sync_to_async  # run a service or a query from the test's event loop


@pytest.fixture
async def open_socket(redis_channel_layer, close_sync_thread_connections):
    """`open_socket(*headers)` -> a WebsocketCommunicator on /ws/events/ (not yet connected).
    Every socket still open at the end of the test is closed, so no consumer outlives it."""
    sockets = []

    def open_(*headers):
        ws = WebsocketCommunicator(application, "/ws/events/", headers=list(headers))
        sockets.append(ws)
        return ws

    yield open_
    for ws in sockets:
        await ws.disconnect(timeout=WAIT)


@pytest.fixture
def connect(open_socket):
    """`await connect(user, auth="cookie"|"bearer")` -> (socket, hello frame) of a logged-in tab."""

    async def connect_(user, *, auth="cookie"):
        credentials = await (session_cookie(user) if auth == "cookie" else bearer(user))
        ws = open_socket(ORIGIN, credentials)
        accepted, _ = await ws.connect(timeout=WAIT)
        assert accepted, f"{user.username}'s socket was refused"
        hello = await ws.receive_json_from(timeout=WAIT)
        assert hello["type"] == "hello", hello
        return ws, hello

    return connect_


async def closed_with(ws) -> dict:
    """The close message of an accepted socket that the server then shut."""
    message = await ws.receive_output(timeout=WAIT)
    assert message["type"] == "websocket.close", message
    return message


async def events_since(user, since: int) -> list[dict]:
    page = await call(selectors.events_since)(user=user, since=since)
    return [event.as_dict() for event in page.items]


def consumer_channels(user) -> set[str]:
    """The channel names of `user`'s sockets subscribed to their group in this process.

    Reads channels_redis' RedisPubSubChannelLayer bookkeeping: the channel layer API has no
    public way to list a group, and the consumer never shows its channel name to the client."""
    layer = get_channel_layer()._get_layer()
    return set(layer.groups.get(layer._get_group_channel_name(user_group(user.pk)), set()))


# --- authentication and origin -------------------------------------------------------------------


@pytest.mark.usefixtures("everyone_online")
async def test_session_cookie_connects_and_hello_carries_the_head_cursor(connect, buyer, seller):
    await call(services.start_conversation)(sender=buyer, recipient_username="seller", body="Hi")
    head = await call(selectors.head_cursor)(user_id=seller.pk)
    assert head == 1

    _ws, hello = await connect(seller, auth="cookie")

    assert hello == {"type": "hello", "cursor": head, "user": "seller"}


@pytest.mark.parametrize("with_origin", [True, False], ids=["with-origin", "without-origin"])
async def test_bearer_token_connects_with_or_without_origin(open_socket, seller, with_origin):
    headers = [await bearer(seller)] + ([ORIGIN] if with_origin else [])
    ws = open_socket(*headers)

    accepted, _ = await ws.connect(timeout=WAIT)

    assert accepted
    assert await ws.receive_json_from(timeout=WAIT) == {"type": "hello", "cursor": 0, "user": "seller"}


async def test_garbage_bearer_token_is_closed_with_4401(open_socket):
    ws = open_socket((b"authorization", b"Bearer not-a-token-anyone-was-given"))

    accepted, _ = await ws.connect(timeout=WAIT)

    assert accepted  # accepted, then closed, so that the browser sees the close code
    assert (await closed_with(ws))["code"] == CLOSE_UNAUTHENTICATED == 4401


async def test_bad_bearer_token_never_falls_back_to_the_session_cookie(open_socket, seller):
    ws = open_socket(ORIGIN, await session_cookie(seller), (b"authorization", b"Bearer forged"))

    assert (await ws.connect(timeout=WAIT))[0]
    assert (await closed_with(ws))["code"] == 4401


async def test_revoked_bearer_token_is_closed_with_4401(open_socket, seller):
    token, raw = await call(issue_api_token)(user=seller)
    await call(revoke_api_token)(token=token)
    ws = open_socket(ORIGIN, (b"authorization", f"Bearer {raw}".encode()))

    assert (await ws.connect(timeout=WAIT))[0]
    assert (await closed_with(ws))["code"] == 4401


async def test_no_credentials_is_closed_with_4401(open_socket):
    ws = open_socket(ORIGIN)

    accepted, _ = await ws.connect(timeout=WAIT)

    assert accepted
    closed = await closed_with(ws)
    assert closed["code"] == 4401
    assert closed["reason"]


@pytest.mark.parametrize(
    "origin",
    [
        b"https://evil.example",
        b"http://testserver.evil.example",
        b"null",
        b"testserver",
        None,
    ],
    ids=["foreign", "lookalike-subdomain", "null", "no-scheme", "no-origin"],
)
async def test_session_cookie_from_a_foreign_or_missing_origin_is_refused(open_socket, seller, origin):
    headers = [await session_cookie(seller)] + ([(b"origin", origin)] if origin is not None else [])
    ws = open_socket(*headers)

    accepted, _ = await ws.connect(timeout=WAIT)

    assert not accepted


async def test_bearer_token_from_a_foreign_origin_is_refused(open_socket, seller):
    ws = open_socket(await bearer(seller), (b"origin", b"https://evil.example"))

    accepted, _ = await ws.connect(timeout=WAIT)

    assert not accepted


# --- forwarding ----------------------------------------------------------------------------------


async def test_events_reach_every_tab_of_both_participants_and_no_stranger(connect, buyer, seller, stranger):
    seller_tab, _ = await connect(seller, auth="cookie")
    seller_other_tab, _ = await connect(seller, auth="bearer")
    buyer_ws, _ = await connect(buyer)
    stranger_ws, _ = await connect(stranger)

    conversation, message, _ = await call(services.start_conversation)(
        sender=buyer, recipient_username="seller", body="Is the logo package still available?"
    )

    [seller_event] = await call(logged_events)(seller)
    for tab in (seller_tab, seller_other_tab):
        frame = await tab.receive_json_from(timeout=WAIT)
        assert frame == seller_event
        assert frame["type"] == "message.created"
        assert frame["cursor"] == 1
        assert frame["conversation_id"] == conversation.pk
        assert frame["unread_count"] == 1
        assert frame["message"]["id"] == message.pk
        assert frame["message"]["sender"] == "buyer"
        assert frame["message"]["body"] == "Is the logo package still available?"
    [buyer_event] = await call(logged_events)(buyer)
    assert await buyer_ws.receive_json_from(timeout=WAIT) == buyer_event
    assert buyer_event["unread_count"] == 0
    assert await stranger_ws.receive_nothing(timeout=QUIET)

    reply, _ = await call(services.send_message)(sender=seller, conversation=conversation, body="Yes!")
    await call(services.mark_read)(user=buyer, conversation=conversation)

    seller_log = await call(logged_events)(seller)
    buyer_log = await call(logged_events)(buyer)
    assert [e["type"] for e in seller_log] == ["message.created", "message.created", "conversation.read"]
    for tab in (seller_tab, seller_other_tab):
        assert [await tab.receive_json_from(timeout=WAIT) for _ in range(2)] == seller_log[1:]
    assert [await buyer_ws.receive_json_from(timeout=WAIT) for _ in range(2)] == buyer_log[1:]
    read = seller_log[2]
    assert read["cursor"] == 3
    assert read["reader"] == "buyer"
    assert read["last_read_message_id"] == reply.pk
    assert buyer_log[2]["unread_count"] == 0
    assert await stranger_ws.receive_nothing(timeout=QUIET)
    for ws in (seller_tab, seller_other_tab, buyer_ws):
        assert await ws.receive_nothing(timeout=0.1)  # each event exactly once per tab


async def test_typing_reaches_only_the_other_participant_and_is_not_logged(connect, buyer, seller):
    conversation, _, _ = await call(services.start_conversation)(
        sender=buyer, recipient_username="seller", body="Hello"
    )
    seller_ws, _ = await connect(seller)
    buyer_ws, _ = await connect(buyer)
    seller_log_before = await call(logged_events)(seller)

    await call(services.announce_typing)(user=buyer, conversation=conversation)

    assert await seller_ws.receive_json_from(timeout=WAIT) == {
        "type": "typing",
        "cursor": None,
        "conversation_id": conversation.pk,
        "user": "buyer",
    }
    assert await buyer_ws.receive_nothing(timeout=QUIET)
    assert await call(logged_events)(seller) == seller_log_before
    assert not await call(Event.objects.filter(type="typing").exists)()


# --- presence ------------------------------------------------------------------------------------


async def watch(ws, *user_ids) -> list[dict]:
    await ws.send_json_to({"type": "presence.watch", "user_ids": list(user_ids)})
    return [await ws.receive_json_from(timeout=WAIT) for _ in dict.fromkeys(user_ids)]


async def test_presence_follows_the_last_socket_of_a_user(connect, buyer, seller, stranger):
    buyer_ws, _ = await connect(buyer)
    stranger_ws, _ = await connect(stranger)  # watches nobody: must hear nothing

    assert await watch(buyer_ws, seller.pk) == [
        {"type": "presence", "cursor": None, "user_id": seller.pk, "online": False}
    ]

    seller_tab, _ = await connect(seller)
    online = await buyer_ws.receive_json_from(timeout=WAIT)
    assert online == {
        "type": "presence",
        "cursor": None,
        "user_id": seller.pk,
        "user": "seller",
        "online": True,
    }

    seller_other_tab, _ = await connect(seller, auth="bearer")
    assert await buyer_ws.receive_nothing(timeout=QUIET)  # already online: no second announcement

    await seller_tab.disconnect(timeout=WAIT)
    assert await buyer_ws.receive_nothing(timeout=QUIET)  # one tab is still open
    assert await watch(buyer_ws, seller.pk) == [
        {"type": "presence", "cursor": None, "user_id": seller.pk, "online": True}
    ]

    await seller_other_tab.disconnect(timeout=WAIT)
    offline = await buyer_ws.receive_json_from(timeout=WAIT)
    assert offline == {
        "type": "presence",
        "cursor": None,
        "user_id": seller.pk,
        "user": "seller",
        "online": False,
    }
    assert await watch(buyer_ws, seller.pk, buyer.pk) == [
        {"type": "presence", "cursor": None, "user_id": seller.pk, "online": False},
        {"type": "presence", "cursor": None, "user_id": buyer.pk, "online": True},
    ]
    assert await stranger_ws.receive_nothing(timeout=QUIET)


async def test_ping_keeps_a_user_online_past_the_presence_ttl(settings, connect, buyer, seller):
    settings.PRESENCE_TTL_SECONDS = 2
    seller_ws, _ = await connect(seller)
    buyer_ws, _ = await connect(buyer)
    assert (await watch(buyer_ws, seller.pk))[0]["online"] is True

    await asyncio.sleep(1.2)
    await seller_ws.send_json_to({"type": "ping"})
    assert await seller_ws.receive_json_from(timeout=WAIT) == {"type": "pong", "cursor": None}
    await asyncio.sleep(1.3)  # 2.5 s after connecting: only the ping kept the seller online
    assert (await watch(buyer_ws, seller.pk))[0]["online"] is True

    await asyncio.sleep(2.5)  # no ping for longer than the TTL, as if the server had died
    assert (await watch(buyer_ws, seller.pk))[0]["online"] is False

    await seller_ws.send_json_to({"type": "ping"})
    assert await seller_ws.receive_json_from(timeout=WAIT) == {"type": "pong", "cursor": None}
    assert (await watch(buyer_ws, seller.pk))[0]["online"] is True


# --- garbage frames ------------------------------------------------------------------------------


def _json(value) -> str:
    return json.dumps(value)


GARBAGE = [
    pytest.param(b"\x00\x01\x02binary", "bad_frame", id="binary"),
    pytest.param("this is not json", "bad_frame", id="not-json"),
    pytest.param("{'type': 'ping'}", "bad_frame", id="python-not-json"),
    pytest.param(_json([{"type": "ping"}]), "bad_frame", id="json-array"),
    pytest.param(_json("ping"), "bad_frame", id="json-string"),
    pytest.param("null", "bad_frame", id="json-null"),
    pytest.param("[" * 2000 + "]" * 2000, "bad_frame", id="deeply-nested"),
    pytest.param(_json({"type": "launch.missiles"}), "unknown_type", id="unknown-type"),
    pytest.param(_json({"hello": "world"}), "unknown_type", id="no-type"),
    pytest.param(_json({"type": ["ping"]}), "unknown_type", id="type-not-a-string"),
    pytest.param(_json({"type": "ping", "pad": "x" * MAX_FRAME_CHARS}), "bad_frame", id="oversized"),
    pytest.param(_json({"type": "presence.watch"}), "bad_frame", id="watch-without-ids"),
    pytest.param(_json({"type": "presence.watch", "user_ids": 5}), "bad_frame", id="watch-ids-not-list"),
    pytest.param(_json({"type": "presence.watch", "user_ids": ["5"]}), "bad_frame", id="watch-id-string"),
    pytest.param(_json({"type": "presence.watch", "user_ids": [True]}), "bad_frame", id="watch-id-bool"),
    pytest.param(_json({"type": "presence.watch", "user_ids": [1.5]}), "bad_frame", id="watch-id-float"),
    pytest.param(_json({"type": "presence.watch", "user_ids": [10**120]}), "bad_frame", id="watch-id-huge"),
    pytest.param(_json({"type": "presence.watch", "user_ids": [-3]}), "bad_frame", id="watch-id-negative"),
    pytest.param(
        _json({"type": "presence.watch", "user_ids": list(range(1, MAX_WATCHED_USERS + 2))}),
        "too_many",
        id="watch-too-many",
    ),
]


@pytest.mark.parametrize(("frame", "error"), GARBAGE)
async def test_garbage_frame_gets_an_error_frame_and_the_socket_keeps_working(
    connect, buyer, seller, frame, error
):
    seller_ws, _ = await connect(seller)

    if isinstance(frame, bytes):
        await seller_ws.send_to(bytes_data=frame)
    else:
        await seller_ws.send_to(text_data=frame)

    reply = await seller_ws.receive_json_from(timeout=WAIT)
    assert reply["type"] == "error"
    assert reply["error"] == error
    assert reply["cursor"] is None
    assert isinstance(reply["detail"], str) and reply["detail"]
    assert await seller_ws.receive_nothing(timeout=0.1)  # one error, nothing else (no presence)

    # Still alive: answers a ping and still forwards events.
    await seller_ws.send_json_to({"type": "ping"})
    assert (await seller_ws.receive_json_from(timeout=WAIT))["type"] == "pong"
    await call(services.start_conversation)(sender=buyer, recipient_username="seller", body="still there?")
    event = await seller_ws.receive_json_from(timeout=WAIT)
    assert event["type"] == "message.created"
    assert event["message"]["body"] == "still there?"


async def test_frame_of_exactly_the_size_limit_is_accepted(connect, seller):
    seller_ws, _ = await connect(seller)
    frame = _json({"type": "ping", "pad": ""})
    frame = _json({"type": "ping", "pad": "x" * (MAX_FRAME_CHARS - len(frame))})
    assert len(frame) == MAX_FRAME_CHARS

    await seller_ws.send_to(text_data=frame)

    assert await seller_ws.receive_json_from(timeout=WAIT) == {"type": "pong", "cursor": None}


async def test_watch_limit_counts_every_user_watched_by_the_socket(connect, user_factory, seller):
    seller_ws, _ = await connect(seller)
    watched = [await call(user_factory)() for _ in range(MAX_WATCHED_USERS)]
    late = await call(user_factory)()
    late_ws, _ = await connect(late)

    frames = await watch(seller_ws, *[user.pk for user in watched])
    assert [(f["user_id"], f["online"]) for f in frames] == [(user.pk, False) for user in watched]
    # Watching the same users again is not "more".
    assert len(await watch(seller_ws, watched[0].pk, watched[1].pk)) == 2

    await seller_ws.send_json_to({"type": "presence.watch", "user_ids": [late.pk]})
    reply = await seller_ws.receive_json_from(timeout=WAIT)
    assert reply["type"] == "error"
    assert reply["error"] == "too_many"

    # The refused user was not watched: their going offline is not announced to this socket.
    await late_ws.disconnect(timeout=WAIT)
    assert await seller_ws.receive_nothing(timeout=QUIET)


# --- loss is harmless ----------------------------------------------------------------------------


async def test_events_pushed_while_no_socket_is_open_are_lost_but_the_log_has_them(connect, buyer, seller):
    seller_ws, _ = await connect(seller)
    conversation, _, _ = await call(services.start_conversation)(
        sender=buyer, recipient_username="seller", body="first"
    )
    last_seen = (await seller_ws.receive_json_from(timeout=WAIT))["cursor"]
    await seller_ws.disconnect(timeout=WAIT)

    missed = ["while you were away 1", "while you were away 2", "while you were away 3"]
    for body in missed:
        await call(services.send_message)(sender=buyer, conversation=conversation, body=body)

    seller_ws, hello = await connect(seller)
    # The pushes are gone: the new socket announces the head cursor but replays nothing.
    # (Away, the seller was also notified of each message: two events per message.)
    assert hello["cursor"] == last_seen + 2 * len(missed)
    assert await seller_ws.receive_nothing(timeout=QUIET)

    gap = await events_since(seller, last_seen)
    assert [event["cursor"] for event in gap] == list(range(last_seen + 1, last_seen + 7))
    assert [event["type"] for event in gap] == ["message.created", "notification.created"] * 3
    assert [event["message"]["body"] for event in gap[::2]] == missed
    assert [event["notification"]["body"] for event in gap[1::2]] == missed

    await call(services.send_message)(sender=buyer, conversation=conversation, body="back live")
    live = await seller_ws.receive_json_from(timeout=WAIT)
    assert live["message"]["body"] == "back live"
    assert live["cursor"] == gap[-1]["cursor"] + 1


async def test_push_lost_on_an_open_socket_shows_as_a_cursor_gap(connect, buyer, seller):
    seller_ws, _ = await connect(seller)
    buyer_ws, _ = await connect(buyer)
    conversation, _, _ = await call(services.start_conversation)(
        sender=buyer, recipient_username="seller", body="first"
    )
    last_seen = (await seller_ws.receive_json_from(timeout=WAIT))["cursor"]
    await buyer_ws.receive_json_from(timeout=WAIT)

    # What a Redis blip or a full channel does: the seller's channel misses the group's pushes.
    [channel] = consumer_channels(seller)
    layer = get_channel_layer()
    await layer.group_discard(user_group(seller.pk), channel)
    await call(services.send_message)(sender=buyer, conversation=conversation, body="lost on the wire")
    assert (await buyer_ws.receive_json_from(timeout=WAIT))["message"]["body"] == "lost on the wire"
    assert await seller_ws.receive_nothing(timeout=QUIET)  # really lost, and the socket did not notice
    await layer.group_add(user_group(seller.pk), channel)

    await call(services.send_message)(sender=buyer, conversation=conversation, body="after the blip")
    live = await seller_ws.receive_json_from(timeout=WAIT)
    assert live["message"]["body"] == "after the blip"
    assert live["cursor"] == last_seen + 2  # a gap of one: the client knows to fetch it

    gap = await events_since(seller, last_seen)
    assert [event["cursor"] for event in gap] == [last_seen + 1, last_seen + 2]
    assert [event["message"]["body"] for event in gap] == ["lost on the wire", "after the blip"]


@pytest.mark.usefixtures("everyone_online")
async def test_push_failure_after_commit_does_not_fail_the_send(settings, buyer, seller):
    conversation, _, _ = await call(services.start_conversation)(
        sender=buyer, recipient_username="seller", body="hello"
    )
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1"], "prefix": "unreachable"},
        }
    }

    started = time.monotonic()
    message, created = await call(services.send_message)(
        sender=buyer, conversation=conversation, body="stored even though Redis is down"
    )
    elapsed = time.monotonic() - started

    assert created
    assert elapsed < WAIT
    stored = await call(Message.objects.get)(pk=message.pk)
    assert stored.body == "stored even though Redis is down"
    for user, unread in ((seller, 2), (buyer, 0)):
        last = (await call(logged_events)(user))[-1]
        assert last["type"] == "message.created"
        assert last["message"]["id"] == message.pk
        assert last["cursor"] == 2
        assert last["unread_count"] == unread
    # The push waits in the outbox for the relay, with why it is waiting.
    [waiting] = await call(list)(OutboxEntry.objects.filter(kind=OutboxEntry.Kind.GROUP_SEND))
    assert waiting.attempts == 1
    assert "channel layer" in waiting.last_error
    assert [group for group, _ in waiting.payload["messages"]] == [f"user.{buyer.pk}", f"user.{seller.pk}"]
