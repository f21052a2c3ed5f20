"""Template helpers for what the orders app shows: cards in a thread, money, dates from a
card's JSON (cards keep ISO strings; pages show them in the viewer's time zone)."""

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from django import template
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..models import Call, CustomOffer, Order, OrderEvent

register = template.Library()


@register.filter
def iso_datetime(value) -> datetime | None:
    """An aware datetime from a card's ISO string (None when missing or malformed)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


@register.filter
def iso_date(value) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


@register.filter
def is_past(value) -> bool:
    return isinstance(value, datetime) and value <= timezone.now()


@register.filter
def money(value) -> str:
    """$1,250.00: how every page shows money."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return ""
    if not amount.is_finite():
        return ""
    return f"${amount:,.2f}"


@register.filter
def order_status_label(value) -> str:
    return dict(Order.Status.choices).get(value, value or "")


@register.filter
def offer_status_label(value) -> str:
    return dict(CustomOffer.Status.choices).get(value, value or "")


@register.filter
def call_status_label(value) -> str:
    return dict(Call.Status.choices).get(value, value or "")


@register.filter
def order_event_label(value) -> str:
    return dict(OrderEvent.Kind.choices).get(value, "Order update")


@register.filter
def http_url(value) -> str:
    """A link target only when it is an http(s) URL (never javascript: or data:)."""
    if isinstance(value, str) and value.lower().startswith(("https://", "http://")):
        return value
    return ""


@register.filter
def stars(value) -> str:
    """★★★★☆ for a rating of 4 (1 to 5)."""
    try:
        rating = max(0, min(5, int(value)))
    except (TypeError, ValueError):
        return ""
    return "★" * rating + "☆" * (5 - rating)
