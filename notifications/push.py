"""Web Push: each browser the recipient subscribed gets the notification (VAPID keys from the
settings; without them the push channel is off and says so)."""

import json
import logging

from django.conf import settings

from .models import Delivery, PushSubscription

logger = logging.getLogger(__name__)


def send_push(notification) -> tuple[str, str]:
    """(status, detail) for the notification's push delivery."""
    if not settings.WEBPUSH_VAPID_PRIVATE_KEY:
        return Delivery.Status.SKIPPED, "Web Push is not configured (WEBPUSH_VAPID_PRIVATE_KEY)"
    from pywebpush import WebPushException, webpush

    subscriptions = list(PushSubscription.objects.filter(user_id=notification.recipient_id))
    if not subscriptions:
        return Delivery.Status.SKIPPED, "no browser subscribed"
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
                vapid_private_key=settings.WEBPUSH_VAPID_PRIVATE_KEY,
                vapid_claims={"sub": settings.WEBPUSH_VAPID_SUBJECT},
                timeout=settings.WEBPUSH_TIMEOUT_SECONDS,
            )
            sent += 1
        except WebPushException as exc:
            status = getattr(exc.response, "status_code", None)
            if status in (404, 410):  # the browser unsubscribed: forget it
                subscription.delete()
            failures.append(f"{status or 'error'}")
            logger.warning("web push to %s failed: %s", subscription.endpoint[:60], exc)
    if sent:
        return Delivery.Status.SENT, f"{sent} browser(s)" + (
            f", failed: {', '.join(failures)}" if failures else ""
        )
    return Delivery.Status.FAILED, "failed: " + ", ".join(failures)
