"""The bell in the site header."""

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from .. import selectors

register = template.Library()


@register.inclusion_tag("notifications/_bell.html", takes_context=True)
def notification_bell(context):
    """The bell with its unread count (one query), so the header is right without script; the
    dropdown's list is fetched when it is first needed."""
    request = context.get("request")
    user = context.get("user")
    if user is None or not user.is_authenticated:
        return {"show": False}
    return {
        "show": True,
        "unread_count": selectors.unread_count(user=user),
        "csrf_token": context.get("csrf_token"),
        "next": request.get_full_path() if request is not None else "",
    }


@register.filter
def ago(value) -> str:
    """When something happened, as people say it: "just now", "5 minutes ago"."""
    if not value:
        return ""
    if (timezone.now() - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value, depth=1)} ago"
