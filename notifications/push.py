"""Web Push: each browser the recipient subscribed gets the notification (VAPID keys from the
settings; without them the push channel is off and says so).

WEBPUSH_VAPID_PRIVATE_KEY is the application server's P-256 private key, either base64url of
the raw 32-byte key (what `make vapid-keys` prints) or base64url DER, or a PEM block (with
real or escaped "\\n" line breaks). WEBPUSH_VAPID_PUBLIC_KEY is the matching public key as the
browser's `applicationServerKey` wants it: base64url of the 65-byte uncompressed point."""

import functools
import json
import logging

import requests
from django.conf import settings

from .models import Delivery, PushSubscription

logger = logging.getLogger(__name__)

# How long the push service keeps a notification for a browser that is offline. 0 (pywebpush's
# default) would drop it unless the browser happens to be connected at that moment.
TTL_SECONDS = 24 * 60 * 60


NOT_CONFIGURED = (Delivery.Status.SKIPPED, "Web Push is not configured (WEBPUSH_VAPID_PRIVATE_KEY is empty)")
NO_BROWSER = (Delivery.Status.SKIPPED, "no browser subscribed")


class InvalidVapidKey(ValueError):
    pass


@functools.lru_cache(maxsize=4)
def vapid_key(private_key: str):
    """The py_vapid signer for a configured key (parsed once per process)."""
    from py_vapid import Vapid

    text = private_key.strip().replace("\\n", "\n")
    try:
        if "-----BEGIN" in text:
            return Vapid.from_pem(text.encode())
        return Vapid.from_string(private_key=text)
    except Exception as exc:
        raise InvalidVapidKey(str(exc) or type(exc).__name__) from None


def outcome_without_sending(recipient_ids: set[int]) -> dict[int, tuple[str, str]]:
    """{recipient id: (status, detail)} for the recipients whose push is settled without
    sending (push not configured, or no browser subscribed): one query at most."""
    if not settings.WEBPUSH_VAPID_PRIVATE_KEY:
        return dict.fromkeys(recipient_ids, NOT_CONFIGURED)
    subscribed = set(
        PushSubscription.objects.filter(user_id__in=recipient_ids).values_list("user_id", flat=True)
    )
    return dict.fromkeys(recipient_ids - subscribed, NO_BROWSER)


def send_push(notification) -> tuple[str, str]:
    """(status, detail) for the notification's push delivery."""
    if not settings.WEBPUSH_VAPID_PRIVATE_KEY:
        return NOT_CONFIGURED
    from pywebpush import WebPushException, webpush

    try:
        vapid = vapid_key(settings.WEBPUSH_VAPID_PRIVATE_KEY)
    except InvalidVapidKey as exc:
        logger.error("WEBPUSH_VAPID_PRIVATE_KEY is not a usable key: %s", exc)
        return Delivery.Status.FAILED, "WEBPUSH_VAPID_PRIVATE_KEY is not a valid P-256 private key"
    subscriptions = list(PushSubscription.objects.filter(user_id=notification.recipient_id))
    if not subscriptions:
        return NO_BROWSER
    data = json.dumps({"title": notification.title, "body": notification.body, "url": notification.url})
    sent, failures = 0, []
    for subscription in subscriptions:
        try:
            webpush(
                subscription_info={
                    "endpoint": subscription.endpoint,
                    "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
                },
                data=data,
                vapid_private_key=vapid,
                vapid_claims={"sub": settings.WEBPUSH_VAPID_SUBJECT},  # a new dict: pywebpush adds aud/exp
                timeout=settings.WEBPUSH_TIMEOUT_SECONDS,
                ttl=TTL_SECONDS,
            )
            sent += 1
        except WebPushException as exc:
            status = getattr(exc.response, "status_code", None)
            if status in (404, 410):  # the browser unsubscribed: forget it
                subscription.delete()
            failures.append(f"{status or 'error'}")
            logger.warning("web push to %s failed: %s", subscription.endpoint[:60], exc)
        except (requests.RequestException, ValueError) as exc:
            # The push service is unreachable or the subscription's keys are unusable: this
            # browser fails, the others are still served.
            failures.append("unreachable" if isinstance(exc, requests.RequestException) else "bad keys")
            logger.warning("web push to %s failed: %r", subscription.endpoint[:60], exc)
    if sent:
        return Delivery.Status.SENT, f"{sent} browser(s)" + (
            f", failed: {', '.join(failures)}" if failures else ""
        )
    return Delivery.Status.FAILED, "failed: " + ", ".join(failures)
