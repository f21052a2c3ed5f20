"""The bell in the header, live: a buyer on a page without the inbox sees its count go from 0 to 1
when something of a seller's notifies them, opens it, clicks the notification and lands where it
points with the count back at 0 (in their other tab too). On the inbox page the bell listens to the
page's own socket instead of opening a second one. And browser push: enabled from the settings
page, its service worker shows what is pushed."""

import base64
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from playwright.sync_api import expect

from notifications import services
from notifications.models import Kind, Notification, PushSubscription
from tests.e2e.support import assert_same_document, expect_live, log_in, mark_document, open_page

pytestmark = [pytest.mark.needs_browser, pytest.mark.needs_redis, pytest.mark.django_db(transaction=True)]

OFFER = "Sam Seller sent you a custom offer"


def in_own_thread(work):
    """Run ORM work in a thread of its own: Playwright's sync API keeps an asyncio loop running
    in the test's thread, and Django refuses database calls there."""

    def run():
        try:
            return work()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def seller_sends_offer(buyer, number: int) -> int:
    """What the seller's action does: notify the buyer, in a committed transaction."""

    def create():
        with transaction.atomic():
            return services.notify(
                recipient=buyer,
                kind=Kind.OFFER_RECEIVED,
                title=f"{OFFER} #{number}",
                body="Logo design <b>in 3 days</b>",
                url="/u/seller/",
                dedupe_key=f"e2e-offer:{number}",
            ).pk

    return in_own_thread(create)


def test_notification_bell_live(
    daphne_servers, redis_url, redis_channel_layer, launch_browser, buyer, seller
):
    server = daphne_servers.start(redis_url=redis_url, redis_prefix=redis_channel_layer)
    browser = launch_browser()
    page = open_page(browser, server)
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    bell = page.locator("#notification-bell")
    badge = page.locator("#notification-count")

    # On the inbox page the bell follows the inbox's socket: one socket in the tab.
    log_in(page, "buyer")
    expect_live(page)
    expect(bell).to_have_attribute("data-connection", "live")
    assert len(sockets) == 1, sockets

    # The home page has no socket of its own: the bell opens one.
    sockets.clear()
    page.goto("/")
    expect(bell).to_have_attribute("data-connection", "live")
    assert [re.sub(r"^ws://[^/]+", "", url) for url in sockets] == ["/ws/events/"]
    expect(badge).to_be_hidden()
    # A second tab of the buyer's, on their orders.
    other_tab = page.context.new_page()
    other_errors: list[str] = []
    other_tab.on("pageerror", lambda error: other_errors.append(str(error)))
    other_tab.goto("/orders/")
    other_badge = other_tab.locator("#notification-count")
    expect(other_tab.locator("#notification-bell")).to_have_attribute("data-connection", "live")
    mark_document(page)

    # The seller's action notifies the buyer: the count goes from 0 to 1, live.
    notification_id = seller_sends_offer(buyer, 1)
    expect(badge).to_have_text("1")
    expect(badge).to_be_visible()
    expect(page.locator("#notification-bell > summary")).to_have_attribute(
        "aria-label", "Notifications, 1 unread"
    )
    expect(other_badge).to_have_text("1")
    assert_same_document(page)

    # The dropdown shows it, unread, its text escaped.
    page.locator("#notification-bell > summary").click()
    item = bell.locator(".bell-item").first
    expect(item).to_contain_text(f"{OFFER} #1")
    expect(item).to_contain_text("Logo design <b>in 3 days</b>")
    expect(item).to_have_class(re.compile(r"\bunread\b"))
    expect(bell.get_by_role("link", name="See all notifications")).to_have_attribute(
        "href", "/notifications/"
    )

    # Clicking it marks it read and goes where it points; the count is back at 0 everywhere.
    item.get_by_role("button").click()
    expect(page).to_have_url(re.compile(r"/u/seller/$"))
    expect(badge).to_be_hidden()
    expect(badge).to_have_text("0")
    expect(other_badge).to_be_hidden()
    assert in_own_thread(lambda: Notification.objects.get(pk=notification_id).read_at is not None)

    # Back in the inbox: the next one arrives through the inbox's socket, and "Mark all as read"
    # clears it without leaving the page.
    expect(bell).to_have_attribute("data-connection", "live")  # this page's socket is counted
    sockets.clear()
    page.goto("/inbox/")
    expect_live(page)
    expect(bell).to_have_attribute("data-connection", "live")
    mark_document(page)
    seller_sends_offer(buyer, 2)
    expect(badge).to_have_text("1")
    page.locator("#notification-bell > summary").click()
    expect(bell.locator(".bell-item").first).to_contain_text(f"{OFFER} #2")
    bell.get_by_role("button", name="Mark all as read").click()
    expect(badge).to_be_hidden()
    expect(bell.locator(".bell-item.unread")).to_have_count(0)
    expect(other_badge).to_be_hidden()
    assert_same_document(page)
    assert len(sockets) == 1, sockets

    assert page.js_errors == [], page.js_errors
    assert other_errors == [], other_errors


# The browser's push service is on the internet, which tests do not reach: the Push API's
# subscribe() is stood in for by a subscription of this test's making.
FAKE_PUSH_SERVICE = """
(() => {
  if (!window.PushManager) return;
  let subscription = null;
  PushManager.prototype.subscribe = async function (options) {
    window.__e2eServerKeyBytes = options.applicationServerKey.byteLength;
    subscription = {
      endpoint: "https://push.example/e2e/1",
      unsubscribe: async () => { subscription = null; return true; },
      toJSON() {
        const keys = { p256dh: "BE2Ekey", auth: "e2eauth" };
        return { endpoint: this.endpoint, expirationTime: null, keys };
      },
    };
    return subscription;
  };
  PushManager.prototype.getSubscription = async function () { return subscription; };
})();
"""


def vapid_public_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return base64.urlsafe_b64encode(point).decode().rstrip("=")


def test_push_is_enabled_from_settings_and_the_service_worker_shows_pushes(
    daphne_servers, launch_browser, buyer, monkeypatch
):
    monkeypatch.setenv("WEBPUSH_VAPID_PUBLIC_KEY", vapid_public_key())
    server = daphne_servers.start()
    browser = launch_browser()
    page = open_page(browser, server)
    page.context.grant_permissions(["notifications"], origin=server)
    page.context.add_init_script(FAKE_PUSH_SERVICE)
    log_in(page, "buyer")
    page.goto("/notifications/settings/")
    status = page.locator("#push-status")

    # "Enable push" registers the worker for the whole site and hands the subscription over.
    page.get_by_role("button", name="Enable push in this browser").click()
    expect(status).to_have_text("Push notifications are on in this browser.")
    expect(page.get_by_role("button", name="Turn off push in this browser")).to_be_visible()
    expect(page.get_by_role("button", name="Enable push in this browser")).to_be_hidden()
    assert page.evaluate("window.__e2eServerKeyBytes") == 65  # the VAPID key, decoded
    scope = page.evaluate("navigator.serviceWorker.getRegistration('/').then((r) => r && r.scope)")
    assert scope == f"{server}/"
    stored = in_own_thread(lambda: list(PushSubscription.objects.values_list("user_id", "endpoint", "auth")))
    assert stored == [(buyer.pk, "https://push.example/e2e/1", "e2eauth")]

    # A push arrives: the worker shows its title and body, and keeps where it points.
    cdp = page.context.new_cdp_session(page)
    registrations = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated", lambda event: registrations.extend(event["registrations"])
    )
    cdp.send("ServiceWorker.enable")
    for _ in range(50):  # the registration is reported right after enabling
        if registrations:
            break
        page.wait_for_timeout(100)
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": f"{server}/",
            "registrationId": registrations[0]["registrationId"],
            "data": json.dumps(
                {"title": "Sam Seller sent you a custom offer", "body": "Logo", "url": "/u/seller/"}
            ),
        },
    )
    shown = page.wait_for_function(
        """async () => {
          const registration = await navigator.serviceWorker.getRegistration('/');
          const shown = await registration.getNotifications();
          return shown.length ? shown.map((n) => [n.title, n.body, n.data.url]) : null;
        }"""
    ).json_value()
    assert shown == [["Sam Seller sent you a custom offer", "Logo", f"{server}/u/seller/"]]

    # "Turn off" forgets this browser.
    page.get_by_role("button", name="Turn off push in this browser").click()
    expect(status).to_have_text("Push notifications are off in this browser.")
    expect(page.get_by_role("button", name="Enable push in this browser")).to_be_visible()
    assert in_own_thread(lambda: PushSubscription.objects.count()) == 0
    assert page.js_errors == [], page.js_errors
