from inbox.payloads import iso_timestamp

from .models import Notification


def notification_payload(notification: Notification) -> dict:
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "url": notification.url,
        "created_at": iso_timestamp(notification.created_at),
        "read": notification.read_at is not None,
    }
