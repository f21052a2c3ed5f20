"""Access taken away takes the open sockets with it: logout, a revoked token, a deactivated user.
Blocking and a moderation suspension take away less, and the tests say what they do to a tab."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from inbox import services
from inbox.consumers import CLOSE_UNAUTHENTICATED
from inbox.services import block_user
from marketplace.accounts.services import deactivate_user, issue_api_token, revoke_api_token
from marketplace.asgi import application
from tests.factories import bearer_headers, buyer_opens_conversation, make_completed_order

pytestmark = [
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("redis_channel_layer", "close_sync_thread_connections"),
]


def logged_in_browser(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def cookie_header(browser: Client) -> tuple[bytes, bytes]:
    sessionid = browser.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={sessionid}".encode())


async def open_tab(*headers) -> WebsocketCommunicator:
    ws = WebsocketCommunicator(
        application, "/ws/events/", headers=[(b"origin", b"http://testserver"), *headers]
    )
    connected, _ = await ws.connect()
    assert connected
    hello = await ws.receive_json_from(timeout=5)
    assert hello["type"] == "hello"
    return ws


async def assert_closed_for_auth(ws):
    output = await ws.receive_output(timeout=5)
    assert output == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED, "reason": "access revoked"}


async def test_logging_out_closes_that_sessions_sockets_only(buyer, seller):
    conversation = await sync_to_async(buyer_opens_conversation)(buyer, seller)
    browser = await sync_to_async(logged_in_browser)(buyer)
    _token, raw = await sync_to_async(issue_api_token)(user=buyer)
    browser_tab = await open_tab(cookie_header(browser))
    api_socket = await open_tab((b"authorization", f"Bearer {raw}".encode()))

    response = await sync_to_async(browser.post)("/accounts/logout/")
    assert response.status_code == 302

    await assert_closed_for_auth(browser_tab)
    # The API client logged in with a token, not this session: it keeps receiving.
    await sync_to_async(services.send_message)(sender=seller, conversation=conversation, body="Still here?")
    event = await api_socket.receive_json_from(timeout=5)
    assert event["type"] == "message.created"
    assert event["message"]["body"] == "Still here?"
    await api_socket.disconnect()


async def test_revoking_a_token_closes_the_sockets_opened_with_it(buyer):
    token, raw = await sync_to_async(issue_api_token)(user=buyer)
    _other, other_raw = await sync_to_async(issue_api_token)(user=buyer)
    revoked_socket = await open_tab((b"authorization", f"Bearer {raw}".encode()))
    other_socket = await open_tab((b"authorization", f"Bearer {other_raw}".encode()))

    await sync_to_async(revoke_api_token)(token=token)

    await assert_closed_for_auth(revoked_socket)
    assert await other_socket.receive_nothing(timeout=0.5)
    await other_socket.disconnect()


async def test_deactivating_a_user_closes_every_socket_they_have(buyer):
    browser = await sync_to_async(logged_in_browser)(buyer)
    _token, raw = await sync_to_async(issue_api_token)(user=buyer)
    tabs = [
        await open_tab(cookie_header(browser)),
        await open_tab((b"authorization", f"Bearer {raw}".encode())),
    ]

    await sync_to_async(deactivate_user)(user=buyer)

    for tab in tabs:
        await assert_closed_for_auth(tab)
    assert (
        await sync_to_async(Client().get)("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}")
    ).status_code == 401


async def test_deactivating_in_the_admin_closes_the_users_sockets(buyer, user_factory):
    admin = await sync_to_async(user_factory)("boss")
    admin.is_staff = admin.is_superuser = True
    await sync_to_async(admin.save)()
    browser = await sync_to_async(logged_in_browser)(buyer)
    tab = await open_tab(cookie_header(browser))

    staff = await sync_to_async(logged_in_browser)(admin)
    response = await sync_to_async(staff.post)(
        "/admin/accounts/user/", {"action": "deactivate", "_selected_action": [buyer.pk]}
    )
    assert response.status_code == 302
    await assert_closed_for_auth(tab)


# Blocking is between two people, not a ban: no socket is scoped to a pair (a tab carries all of
# its user's conversations), so nothing is closed. What must stop at once is anything passing
# between the two.
async def test_being_blocked_stops_what_passes_between_the_two_but_keeps_the_socket(buyer, seller):
    await sync_to_async(make_completed_order)(buyer, seller)  # blocking needs one (orders' rule)
    conversation = await sync_to_async(buyer_opens_conversation)(buyer, seller)
    buyer_tab = await open_tab(cookie_header(await sync_to_async(logged_in_browser)(buyer)))
    seller_tab = await open_tab(cookie_header(await sync_to_async(logged_in_browser)(seller)))
    seller_api = await sync_to_async(bearer_headers)(seller)
    buyer_api = await sync_to_async(bearer_headers)(buyer)

    blocked = await sync_to_async(Client().post)(
        "/api/v1/blocks", {"username": buyer.username}, content_type="application/json", **seller_api
    )
    assert blocked.status_code == 204
    await buyer_tab.receive_nothing(timeout=0.3)  # drop anything from before the block
    await seller_tab.receive_nothing(timeout=0.3)

    refused = await sync_to_async(Client().post)(
        f"/api/v1/conversations/{conversation.pk}/messages",
        {"body": "Why did you block me?"},
        content_type="application/json",
        **buyer_api,
    )
    assert (refused.status_code, refused.json()["error"]) == (403, "blocked_by_recipient")
    assert await seller_tab.receive_nothing(timeout=0.5)
    # The blocked person's own access is untouched: their tab still answers.
    await buyer_tab.send_json_to({"type": "ping"})
    assert (await buyer_tab.receive_json_from(timeout=5))["type"] == "pong"
    await buyer_tab.disconnect()
    await seller_tab.disconnect()


async def test_a_blocked_user_typing_reaches_nobody(buyer, seller):
    await sync_to_async(make_completed_order)(buyer, seller)
    conversation = await sync_to_async(buyer_opens_conversation)(buyer, seller)
    await sync_to_async(block_user)(blocker=seller, blocked=buyer)
    seller_tab = await open_tab(cookie_header(await sync_to_async(logged_in_browser)(seller)))

    typing = await sync_to_async(Client().post)(
        f"/api/v1/conversations/{conversation.pk}/typing", **await sync_to_async(bearer_headers)(buyer)
    )

    assert typing.status_code in (204, 403)
    assert await seller_tab.receive_nothing(timeout=0.5)
    await seller_tab.disconnect()


# A suspension stops writing, not reading (docs/API.md, `suspended`: "Reading still works"), so
# the tab stays open; it learns of the suspension at once, and every write is refused.
async def test_a_moderation_suspension_reaches_the_open_tab_at_once_and_stops_writing(buyer, seller, staff):
    conversation = await sync_to_async(buyer_opens_conversation)(buyer, seller)
    tab = await open_tab(cookie_header(await sync_to_async(logged_in_browser)(buyer)))
    moderator = await sync_to_async(logged_in_browser)(staff)

    response = await sync_to_async(moderator.post)(
        "/admin/moderation/restriction/add/", {"user": buyer.pk, "kind": "suspension", "reason": "Scams."}
    )
    assert response.status_code == 302

    event = await tab.receive_json_from(timeout=5)
    assert (event["type"], event["notification"]["kind"]) == ("notification.created", "suspension")
    refused = await sync_to_async(Client().post)(
        f"/api/v1/conversations/{conversation.pk}/messages",
        {"body": "Still there?"},
        content_type="application/json",
        **await sync_to_async(bearer_headers)(buyer),
    )
    assert (refused.status_code, refused.json()["error"]) == (403, "suspended")
    await tab.send_json_to({"type": "ping"})
    assert (await tab.receive_json_from(timeout=5))["type"] == "pong"
    await tab.disconnect()
