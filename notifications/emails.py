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


def absolute_url(path: str) -> str:
    """SITE_URL + a path on this site. The path always starts with exactly one "/", so a stored
    url such as "@other.example/" or "//other.example/" cannot turn the link into another host."""
    return settings.SITE_URL.rstrip("/") + "/" + path.lstrip("/")


def send_notification_email(*, recipient, notifications, digest: bool) -> None:
    items = [
        {
            "notification": n,
            "kind_label": n.get_kind_display(),
            "link": absolute_url(n.url),
            "unsubscribe": absolute_url(
                reverse("notifications:unsubscribe", args=[unsubscribe_token(user=recipient, kind=n.kind)])
            ),
        }
        for n in notifications
    ]
    # One "stop emails about ..." link per kind, in the order the kinds first appear (a digest
    # shows these once at the end instead of under every item).
    by_kind = {}
    for item in items:
        by_kind.setdefault(
            item["notification"].kind, {"label": item["kind_label"], "url": item["unsubscribe"]}
        )
    unsubscribe_links = list(by_kind.values())
    if digest:
        subject = f"{len(items)} unread message{'s' if len(items) != 1 else ''} in your inbox"
    elif len(items) == 1:
        subject = notifications[0].title
    else:
        subject = f"{len(items)} updates from your inbox"
    subject = " ".join(subject.split())  # a header: no line breaks, whatever the title holds
    context = {
        "recipient": recipient,
        "items": items,
        "digest": digest,
        "subject": subject,
        "site_url": settings.SITE_URL,
        "settings_url": absolute_url(reverse("notifications:settings")),
        "unsubscribe_links": unsubscribe_links,
    }
    email = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("notifications/email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient.email],
        headers={"List-Unsubscribe": f"<{items[0]['unsubscribe']}>"},
    )
    email.attach_alternative(render_to_string("notifications/email.html", context), "text/html")
    email.send()
