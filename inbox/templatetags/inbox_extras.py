"""Small template helpers for the inbox pages."""

import re

from django import template
from django.utils import timezone

from .. import services

register = template.Library()

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_LABEL_COLOR = "#6b7280"


@register.filter
def edit_seconds_left(message, user) -> int:
    """Seconds during which `user` may still edit or delete `message` (0: not theirs, deleted,
    or too late, or a card: offers, requests, calls and order updates never change by hand; or
    held or refused by moderation).
    The page hides the buttons when it reaches 0; the service decides anyway."""
    if message.sender_id != getattr(user, "pk", None) or message.is_deleted or message.kind != "text":
        return 0
    if message.status != "visible":
        return 0  # under review or refused: it cannot change (the service refuses too)
    left = (message.created_at + services.EDIT_WINDOW - timezone.now()).total_seconds()
    return max(0, int(left))


@register.filter
def label_color(value) -> str:
    """A label colour fit for a style attribute: #rrggbb, or the default grey."""
    return value if isinstance(value, str) and _COLOR.match(value) else DEFAULT_LABEL_COLOR


@register.filter
def time_left(value) -> str:
    """What remains of a 24-hour window: "5 h 12 min left", "40 min left", or "2 h late"."""
    if value is None:
        return ""
    minutes = int(abs(value.total_seconds()) // 60)
    hours, minutes = divmod(minutes, 60)
    amount = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return f"{amount} left" if value.total_seconds() > 0 else f"{amount} late"


@register.filter
def response_time(value) -> str:
    """An average response time as people say it: "12 minutes", "3 hours", "2 days"."""
    if value is None:
        return ""
    minutes = max(1, round(value.total_seconds() / 60))
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60)
    if hours < 48:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    days = round(hours / 24)
    return f"{days} days"
