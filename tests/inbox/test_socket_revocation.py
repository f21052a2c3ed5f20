"""Access taken away takes the open sockets with it: logout, a revoked token, a deactivated user."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from inbox import services
from inbox.consumers import CLOSE_UNAUTHENTICATED
from marketplace.accounts.services import deactivate_user, issue_api_token, revoke_api_token
from marketplace.asgi import application
from tests.factories import buyer_opens_conversation

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
