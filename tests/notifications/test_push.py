"""Web Push for real: pywebpush signs with a VAPID key generated here, encrypts for a browser
key pair generated here, and POSTs to a push service running on 127.0.0.1 in this process (a
small HTTP server thread that records what it receives). The test then does what the browser
does: checks the VAPID signature and decrypts the body (RFC 8291, aes128gcm) with the
subscription's private key and auth secret.

The push service is plain http: pywebpush posts to whatever endpoint it is given. Users cannot
register such an endpoint (services.add_push_subscription accepts only https URLs, which is
right for real push services), so the tests store the PushSubscription row directly."""

import base64
import json
import os
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from py_vapid import Vapid

from marketplace.errors import InvalidInput
from notifications import services
from notifications.models import Channel, Delivery, Kind, Notification, PushSubscription


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def uncompressed_point(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


# --- a push service on 127.0.0.1 -----------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class PushService:
    """Records every POST; answers 201 Created, or the status set for a path."""

    def __init__(self):
        self.received: list[Received] = []
        self.status_for: dict[str, int] = {}
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                service.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                self.send_response(service.status_for.get(self.path, 201))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def endpoint(self, name: str) -> str:
        return f"{self.origin}/push/{name}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def push_service(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # never through a proxy from the environment
    service = PushService()
    yield service
    service.close()


@pytest.fixture
def vapid(settings):
    """A fresh VAPID key pair, configured the way `make vapid-keys` prints it."""
    key = Vapid()
    key.generate_keys()
    settings.WEBPUSH_VAPID_PRIVATE_KEY = b64url(
        key.private_key.private_numbers().private_value.to_bytes(32, "big")
    )
    settings.WEBPUSH_VAPID_PUBLIC_KEY = b64url(uncompressed_point(key.public_key))
    settings.WEBPUSH_VAPID_SUBJECT = "mailto:push-test@example.com"
    return key


@dataclass
class Browser:
    """What a browser keeps of its subscription: the ECDH private key and the auth secret."""

    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    subscription: PushSubscription

    def decrypt(self, received: Received) -> dict:
        plain = http_ece.decrypt(
            received.body, private_key=self.private_key, auth_secret=self.auth_secret, version="aes128gcm"
        )
        return json.loads(plain)


def subscribe(user, push_service: PushService, name: str) -> Browser:
    private_key = ec.generate_private_key(ec.SECP256R1())
    auth_secret = os.urandom(16)
    # Stored directly: add_push_subscription refuses http endpoints (see the module docstring).
    subscription = PushSubscription.objects.create(
        user=user,
        endpoint=push_service.endpoint(name),
        p256dh=b64url(uncompressed_point(private_key.public_key())),
        auth=b64url(auth_secret),
    )
    return Browser(private_key, auth_secret, subscription)


def notify(user, *, key: str, kind: str = Kind.ORDER_DELIVERED) -> Notification:
    return services.notify(
        recipient=user,
        kind=kind,
        title="Order delivered: “Logo” & more",
        body="Sam delivered your order. Have a look within 3 days.",
        url="/orders/42/",
        dedupe_key=key,
    )


def push_deliveries(notification) -> list[tuple[str, str]]:
    return list(
        Delivery.objects.filter(notification=notification, channel=Channel.PUSH).values_list(
            "status", "detail"
        )
    )


def check_vapid(headers: dict[str, str], *, public_key_b64: str, audience: str, subject: str) -> None:
    """What a push service checks (RFC 8292): `vapid t=<JWT signed ES256>, k=<public key>`."""
    scheme, _, params = headers["authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert fields["k"] == public_key_b64
    signing_input, _, signature = fields["t"].rpartition(".")
    header = json.loads(unb64url(signing_input.split(".")[0]))
    claims = json.loads(unb64url(signing_input.split(".")[1]))
    assert header == {"typ": "JWT", "alg": "ES256"}
    raw = unb64url(signature)
    public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
    public_key.verify(
        encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
        signing_input.encode(),
        ec.ECDSA(hashes.SHA256()),
    )  # raises InvalidSignature otherwise
    assert claims["aud"] == audience
    assert claims["sub"] == subject
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600


# --- tests ---------------------------------------------------------------------------------------


def test_push_reaches_each_browser_signed_and_encrypted(
    buyer, seller, push_service, vapid, settings, django_capture_on_commit_callbacks
):
    laptop = subscribe(buyer, push_service, "laptop")
    phone = subscribe(buyer, push_service, "phone")
    subscribe(seller, push_service, "someone-else")

    with django_capture_on_commit_callbacks(execute=True):
        notification = notify(buyer, key="delivered")

    assert sorted(r.path for r in push_service.received) == ["/push/laptop", "/push/phone"]
    expected = {"title": notification.title, "body": notification.body, "url": "/orders/42/"}
    for browser in (laptop, phone):
        [received] = [
            r for r in push_service.received if r.path == urlsplit(browser.subscription.endpoint).path
        ]
        assert received.headers["content-encoding"] == "aes128gcm"
        assert int(received.headers["ttl"]) >= 3600  # kept for a browser that is offline a while
        assert expected["body"].encode() not in received.body  # encrypted on the wire
        assert browser.decrypt(received) == expected
        check_vapid(
            received.headers,
            public_key_b64=settings.WEBPUSH_VAPID_PUBLIC_KEY,
            audience=push_service.origin,
            subject="mailto:push-test@example.com",
        )
    # Each browser's keys open only its own copy.
    laptop_copy = next(r for r in push_service.received if r.path == "/push/laptop")
    with pytest.raises(http_ece.ECEException):
        phone.decrypt(laptop_copy)
    assert push_deliveries(notification) == [(Delivery.Status.SENT, "2 browser(s)")]


def test_a_gone_subscription_is_forgotten(buyer, push_service, vapid, django_capture_on_commit_callbacks):
    gone = subscribe(buyer, push_service, "gone")
    kept = subscribe(buyer, push_service, "kept")
    push_service.status_for["/push/gone"] = 410

    with django_capture_on_commit_callbacks(execute=True):
        notification = notify(buyer, key="one")

    assert sorted(r.path for r in push_service.received) == ["/push/gone", "/push/kept"]
    assert not PushSubscription.objects.filter(pk=gone.subscription.pk).exists()
    assert PushSubscription.objects.filter(pk=kept.subscription.pk).exists()
    assert push_deliveries(notification) == [(Delivery.Status.SENT, "1 browser(s), failed: 410")]

    # The next notification goes only to the browser still subscribed.
    push_service.received.clear()
    with django_capture_on_commit_callbacks(execute=True):
        notify(buyer, key="two")
    assert [r.path for r in push_service.received] == ["/push/kept"]


def test_only_gone_subscriptions_fail_the_delivery(buyer, push_service, vapid):
    subscribe(buyer, push_service, "gone")
    push_service.status_for["/push/gone"] = 404
    notification = notify(buyer, key="one")
    services.fan_out(notification_ids=[notification.pk])
    assert push_deliveries(notification) == [(Delivery.Status.FAILED, "failed: 404")]
    assert not PushSubscription.objects.filter(user=buyer).exists()


def test_a_push_service_that_refuses_keeps_the_subscription(buyer, push_service, vapid):
    browser = subscribe(buyer, push_service, "busy")
    push_service.status_for["/push/busy"] = 429
    notification = notify(buyer, key="one")
    services.fan_out(notification_ids=[notification.pk])
    assert push_deliveries(notification) == [(Delivery.Status.FAILED, "failed: 429")]
    assert PushSubscription.objects.filter(pk=browser.subscription.pk).exists()


def test_an_unreachable_push_service_does_not_stop_the_fan_out(buyer, push_service, vapid, mailoutbox):
    # A port nobody listens on: connection refused.
    closed = PushService()
    closed.close()
    p256dh, auth = subscribe_keys()
    PushSubscription.objects.create(user=buyer, endpoint=closed.endpoint("nobody"), p256dh=p256dh, auth=auth)
    subscribe(buyer, push_service, "up")
    notification = notify(buyer, key="one")
    services.fan_out(notification_ids=[notification.pk])
    assert [r.path for r in push_service.received] == ["/push/up"]
    assert push_deliveries(notification) == [(Delivery.Status.SENT, "1 browser(s), failed: unreachable")]
    assert len(mailoutbox) == 1  # the email channel was still served
    notification.refresh_from_db()
    assert notification.fanned_out_at is not None


def subscribe_keys() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url(uncompressed_point(key.public_key())), b64url(os.urandom(16))


def test_without_a_vapid_key_push_is_skipped(buyer, push_service, settings):
    settings.WEBPUSH_VAPID_PRIVATE_KEY = ""
    subscribe(buyer, push_service, "laptop")
    notification = notify(buyer, key="one")
    services.fan_out(notification_ids=[notification.pk])
    assert push_service.received == []
    [(status, detail)] = push_deliveries(notification)
    assert status == Delivery.Status.SKIPPED
    assert "WEBPUSH_VAPID_PRIVATE_KEY" in detail and "not configured" in detail


def test_an_unusable_vapid_key_fails_with_a_clear_detail(buyer, push_service, settings):
    settings.WEBPUSH_VAPID_PRIVATE_KEY = "not-a-key"
    subscribe(buyer, push_service, "laptop")
    notification = notify(buyer, key="one")
    services.fan_out(notification_ids=[notification.pk])
    assert push_service.received == []
    assert push_deliveries(notification) == [
        (Delivery.Status.FAILED, "WEBPUSH_VAPID_PRIVATE_KEY is not a valid P-256 private key")
    ]


def test_a_pem_vapid_key_works_too(buyer, push_service, vapid, settings):
    # A PEM pasted into .env with escaped line breaks, as py_vapid's own tools write it.
    settings.WEBPUSH_VAPID_PRIVATE_KEY = vapid.private_pem().decode().replace("\n", "\\n")
    browser = subscribe(buyer, push_service, "laptop")
    notification = notify(buyer, key="one")
    services.fan_out(notification_ids=[notification.pk])
    [received] = push_service.received
    assert browser.decrypt(received)["url"] == "/orders/42/"
    check_vapid(
        received.headers,
        public_key_b64=settings.WEBPUSH_VAPID_PUBLIC_KEY,
        audience=push_service.origin,
        subject="mailto:push-test@example.com",
    )


def test_push_run_twice_sends_once(buyer, push_service, vapid, django_capture_on_commit_callbacks):
    subscribe(buyer, push_service, "laptop")
    with django_capture_on_commit_callbacks(execute=True):
        notification = notify(buyer, key="one")
    services.fan_out(notification_ids=[notification.pk])
    # A redelivered task that does not know the first run finished (fanned_out_at unset).
    Notification.objects.filter(pk=notification.pk).update(fanned_out_at=None)
    services.fan_out(notification_ids=[notification.pk])
    assert len(push_service.received) == 1
    assert push_deliveries(notification) == [(Delivery.Status.SENT, "1 browser(s)")]


def test_push_off_sends_nothing(buyer, push_service, vapid, django_capture_on_commit_callbacks):
    subscribe(buyer, push_service, "laptop")
    services.set_preferences(user=buyer, changes={Kind.ORDER_DELIVERED: {Channel.PUSH: False}})
    with django_capture_on_commit_callbacks(execute=True):
        off = notify(buyer, key="off")
        on = notify(buyer, key="on", kind=Kind.ORDER_COMPLETED)
    assert len(push_service.received) == 1
    assert push_deliveries(off) == []
    assert push_deliveries(on) == [(Delivery.Status.SENT, "1 browser(s)")]


def test_users_can_only_subscribe_https_endpoints(buyer, push_service):
    with pytest.raises(InvalidInput):
        services.add_push_subscription(
            user=buyer, endpoint=push_service.endpoint("x"), p256dh=subscribe_keys()[0], auth="abc"
        )
    assert not PushSubscription.objects.exists()
    stored = services.add_push_subscription(
        user=buyer, endpoint="https://push.example.test/x", p256dh=subscribe_keys()[0], auth="abc"
    )
    assert stored.endpoint == "https://push.example.test/x"
