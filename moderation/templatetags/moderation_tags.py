"""The inbox pages' banner about the user's own restrictions."""

from django import template

from .. import selectors

register = template.Library()


@register.inclusion_tag("moderation/_standing_banner.html", takes_context=True)
def standing_banner(context):
    """A suspension in force (until when, or permanent), else a warning of the last 30 days."""
    request = context.get("request")
    user = getattr(request, "user", None)
    return {"standing": selectors.standing(user), "warning_days": selectors.WARNING_SHOWN_DAYS}
