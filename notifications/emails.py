"""The notification emails: one per recipient per batch, or a digest of unread messages."""

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

UNSUBSCRIBE_SALT = "notifications.unsubscribe"


def unsubscribe_token(*, user, kind: str) -> str:
    return signing.dumps({"user": user.pk, "kind": kind}, salt=UNSUBSCRIBE_SALT)


def read_unsubscribe_token(token: str) -> dict:
    """{"user": id, "kind": kind}; raises signing.BadSignature for a token we did not make."""
    return signing.loads(token, salt=UNSUBSCRIBE_SALT)


def send_notification_email(*, recipient, notifications, digest: bool) -> None:
    items = [
        {
            "notification": n,
            "link": settings.SITE_URL.rstrip("/") + n.url,
            "unsubscribe": settings.SITE_URL.rstrip("/")
            + reverse("notifications:unsubscribe", args=[unsubscribe_token(user=recipient, kind=n.kind)]),
        }
        for n in notifications
    ]
    context = {"recipient": recipient, "items": items, "digest": digest, "site_url": settings.SITE_URL}
    if digest:
        subject = f"{len(items)} unread message{'s' if len(items) != 1 else ''} in your inbox"
    elif len(items) == 1:
        subject = notifications[0].title
    else:
        subject = f"{len(items)} updates from your inbox"
    email = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("notifications/email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient.email],
        headers={"List-Unsubscribe": f"<{items[0]['unsubscribe']}>"},
    )
    email.attach_alternative(render_to_string("notifications/email.html", context), "text/html")
    email.send()
