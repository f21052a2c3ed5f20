"""Reads about notifications: the bell, the full list, preferences."""

import base64
import binascii
import json
import re
from dataclasses import dataclass

from marketplace.errors import InvalidInput

from .models import DEFAULT_OFF, Channel, Kind, Notification, Preference

PAGE_DEFAULT, PAGE_MAX = 20, 100
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"  # base64url without padding, as handed out


def channel_enabled(*, user, kind: str, channel: str) -> bool:
    row = (
        Preference.objects.filter(user=user, kind=kind, channel=channel)
        .values_list("enabled", flat=True)
        .first()
    )
    return row if row is not None else (kind, channel) not in DEFAULT_OFF


def preferences(*, user) -> dict:
    """{kind: {channel: bool}} for every kind and channel, defaults filled in."""
    matrix = {
        kind: {channel: (kind, channel) not in DEFAULT_OFF for channel in Channel.values}
        for kind in Kind.values
    }
    for kind, channel, enabled in Preference.objects.filter(user=user).values_list(
        "kind", "channel", "enabled"
    ):
        if kind in matrix and channel in matrix[kind]:
            matrix[kind][channel] = enabled
    return matrix


def channels_for(notifications: list[Notification]) -> dict[int, set[str]]:
    """The email and push channels each notification's recipient wants (one query)."""
    users = {n.recipient_id for n in notifications}
    chosen = {
        (user_id, kind, channel): enabled
        for user_id, kind, channel, enabled in Preference.objects.filter(user_id__in=users).values_list(
            "user_id", "kind", "channel", "enabled"
        )
    }
    wanted = {}
    for notification in notifications:
        wanted[notification.pk] = {
            channel
            for channel in (Channel.EMAIL, Channel.PUSH)
            if chosen.get(
                (notification.recipient_id, notification.kind, channel),
                (notification.kind, channel) not in DEFAULT_OFF,
            )
        }
    return wanted


def unread_count(*, user) -> int:
    return Notification.objects.filter(recipient=user, in_app=True, read_at__isnull=True).count()


@dataclass
class NotificationPage:
    items: list[Notification]
    next_cursor: str | None


def notifications_page(*, user, cursor: str | None = None, limit: int | None = None) -> NotificationPage:
    """The bell's list, newest first, keyset-paginated on id (one query per page)."""
    if limit is None:
        limit = PAGE_DEFAULT
    elif not 1 <= limit <= PAGE_MAX:
        raise InvalidInput(f"limit must be between 1 and {PAGE_MAX}.", code="invalid_limit")
    rows = Notification.objects.filter(recipient=user, in_app=True).order_by("-pk")
    if cursor:
        rows = rows.filter(pk__lt=_decode(cursor))
    items = list(rows[: limit + 1])
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = _encode(items[-1].pk)
    return NotificationPage(items=items, next_cursor=next_cursor)


def _encode(pk: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": pk}).encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        if not re.fullmatch(CURSOR_PATTERN, cursor):  # b64decode would skip stray characters
            raise ValueError
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return int(data["before"])
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidInput("The cursor is not one this server handed out.", code="invalid_cursor") from None
