"""Reads about gigs, requests, offers, orders and calls, each a fixed number of queries."""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    BooleanField,
    Case,
    Count,
    DecimalField,
    Min,
    Prefetch,
    Q,
    Sum,
    Value,
    When,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from inbox.models import MAX_ROW_ID, Message
from inbox.selectors import visible_to
from marketplace.accounts.selectors import away_periods_between
from marketplace.errors import InvalidInput, NotFound

from .models import BuyerRequest, Call, CustomOffer, Gig, Order, OrderEvent, Review

ORDERS_PAGE = 20


def active_gigs(*, limit: int = 24):
    return list(
        Gig.objects.filter(is_active=True).select_related("seller__profile").order_by("-created_at")[:limit]
    )


def gig_detail(*, gig_id: int) -> Gig:
    return get_object_or_404(Gig.objects.select_related("seller__profile"), pk=gig_id, is_active=True)


def gigs_of_seller(*, seller, include_inactive: bool = False):
    gigs = Gig.objects.filter(seller=seller).select_related("seller__profile")
    if not include_inactive:
        gigs = gigs.filter(is_active=True)
    return list(gigs.order_by("-created_at"))


def seller_has_gig(*, seller, title: str) -> bool:
    return Gig.objects.filter(seller=seller, title=title).exists()


def has_offer_from(*, seller, buyer) -> bool:
    return CustomOffer.objects.filter(seller=seller, buyer=buyer).exists()


def has_request_from(*, buyer, seller) -> bool:
    return BuyerRequest.objects.filter(buyer=buyer, seller=seller).exists()


def _valid_id(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= MAX_ROW_ID else None


def gig_of_seller(*, seller, gig_id) -> Gig:
    gig_id = _valid_id(gig_id)
    gig = Gig.objects.filter(pk=gig_id, seller=seller).first() if gig_id else None
    if gig is None:
        raise NotFound("Gig not found.")
    return gig


def order_for_user(*, user, number: str) -> Order:
    """An order the user is the buyer or the seller of, by its number; NotFound otherwise."""
    # No number holds a NUL, and PostgreSQL refuses one even in a lookup.
    if not isinstance(number, str) or len(number) > 20 or "\x00" in number or not user.is_authenticated:
        raise NotFound("Order not found.")
    order = (
        Order.objects.select_related("buyer__profile", "seller__profile", "conversation", "gig")
        .filter(Q(buyer=user) | Q(seller=user), number=number.upper())
        .first()
    )
    if order is None:
        raise NotFound("Order not found.")
    return order


def offer_for_user(*, user, offer_id) -> CustomOffer:
    offer_id = _valid_id(offer_id)
    offer = (
        CustomOffer.objects.select_related("message", "buyer", "seller")
        .filter(Q(buyer=user) | Q(seller=user), pk=offer_id)
        .first()
        if offer_id and user.is_authenticated
        else None
    )
    if offer is None:
        raise NotFound("Offer not found.")
    return offer


def call_for_user(*, user, call_id) -> Call:
    call_id = _valid_id(call_id)
    call = (
        Call.objects.select_related("message").filter(Q(buyer=user) | Q(seller=user), pk=call_id).first()
        if call_id and user.is_authenticated
        else None
    )
    if call is None:
        raise NotFound("Call not found.")
    return call


def orders_for_user(*, user, role: str | None = None, status: str | None = None, before: int | None = None):
    """The user's orders, newest first (keyset on id); `role` buyer or seller, `status` one of
    Order.Status or "open"."""
    orders = Order.objects.select_related("buyer__profile", "seller__profile")
    if role == "buyer":
        orders = orders.filter(buyer=user)
    elif role == "seller":
        orders = orders.filter(seller=user)
    elif role is None:
        orders = orders.filter(Q(buyer=user) | Q(seller=user))
    else:
        raise InvalidInput("role is buyer or seller.", code="invalid_role")
    if status == "open":
        orders = orders.filter(status__in=Order.OPEN_STATUSES)
    elif status is not None:
        if status not in Order.Status.values:
            raise InvalidInput(
                f"status is open or one of {', '.join(Order.Status.values)}.", code="invalid_status"
            )
        orders = orders.filter(status=status)
    if before is not None:
        orders = orders.filter(pk__lt=before)
    rows = list(orders.order_by("-pk")[: ORDERS_PAGE + 1])
    return rows[:ORDERS_PAGE], (rows[ORDERS_PAGE - 1].pk if len(rows) > ORDERS_PAGE else None)


def orders_between(*, user, other_user, limit: int = 10) -> list[Order]:
    """The order history between two people, newest first (the inbox's side panel)."""
    return list(
        Order.objects.filter(Q(buyer=user, seller=other_user) | Q(buyer=other_user, seller=user)).order_by(
            "-created_at"
        )[:limit]
    )


def attach_order_details(orders: list[Order]) -> None:
    """Load what an order is shown with, its timeline and reviews, for a whole list (two queries)."""
    prefetch_related_objects(
        orders,
        Prefetch("events", queryset=OrderEvent.objects.select_related("actor").order_by("created_at", "id")),
        Prefetch("reviews", queryset=Review.objects.select_related("author", "subject").order_by("id")),
    )


def order_timeline(*, order: Order):
    return list(order.events.select_related("actor__profile").order_by("created_at", "id"))


def order_messages(*, order: Order, viewer, limit: int = 200) -> list[Message]:
    """The conversation's messages about this order that `viewer` sees, oldest first."""
    rows = (
        Message.objects.filter(visible_to(viewer.pk), order=order)
        .select_related("sender", "reply_to__sender", "order")
        .prefetch_related("attachments")
        .order_by("-id")[:limit]
    )
    return list(reversed(rows))


@dataclass
class BuyerStanding:
    completed_orders: int
    spent: Decimal
    is_top_buyer: bool


def buyer_standing(*, buyer) -> BuyerStanding:
    """Top buyer: at least TOP_BUYER_MIN_COMPLETED_ORDERS completed orders and
    TOP_BUYER_MIN_SPEND spent over the last 365 days."""
    since = timezone.now() - timedelta(days=365)
    totals = Order.objects.filter(
        buyer=buyer, status=Order.Status.COMPLETED, completed_at__gte=since
    ).aggregate(completed=Count("pk"), spent=Sum("price"))
    completed, spent = totals["completed"], totals["spent"] or Decimal("0")
    return BuyerStanding(
        completed_orders=completed,
        spent=spent,
        is_top_buyer=completed >= settings.TOP_BUYER_MIN_COMPLETED_ORDERS
        and spent >= settings.TOP_BUYER_MIN_SPEND,
    )


def with_buyer_standing(users):
    """`users` annotated with buyer_standing's rule, for a whole list in one query:
    `completed_orders` and `spent` over the last 365 days, and `is_top_buyer`."""
    since = timezone.now() - timedelta(days=365)
    in_window = Q(orders_bought__status=Order.Status.COMPLETED, orders_bought__completed_at__gte=since)
    return users.annotate(
        completed_orders=Count("orders_bought", filter=in_window),
        spent=Coalesce(
            Sum("orders_bought__price", filter=in_window),
            Value(Decimal("0")),
            output_field=DecimalField(max_digits=12, decimal_places=2),
        ),
    ).annotate(
        is_top_buyer=Case(
            When(
                completed_orders__gte=settings.TOP_BUYER_MIN_COMPLETED_ORDERS,
                spent__gte=settings.TOP_BUYER_MIN_SPEND,
                then=Value(True),
            ),
            default=Value(False),
            output_field=BooleanField(),
        )
    )


# --- before an order: does a request fit the seller? ----------------------------------------


def _money(value: Decimal) -> str:
    """$1,250 or $49.99: cents only when there are some (rounded, $49.99 would read as $50)."""
    return f"${value:,.2f}".removesuffix(".00")


def request_mismatches(*, seller, budget: Decimal, deadline: date, today: date | None = None) -> list[str]:
    """Plain reasons a request does not fit the seller's gigs (empty when it fits)."""
    today = today or timezone.localdate()
    terms = Gig.objects.filter(seller=seller, is_active=True).aggregate(
        lowest_price=Min("price"), fastest=Min("delivery_days")
    )
    if terms["lowest_price"] is None:
        return [f"{seller.profile.display_name} has no active gigs at the moment."]
    reasons = []
    if budget < terms["lowest_price"]:
        reasons.append(
            f"Your budget ({_money(budget)}) is below {seller.profile.display_name}'s lowest price "
            f"({_money(terms['lowest_price'])})."
        )
    days = (deadline - today).days
    if days < terms["fastest"]:
        reasons.append(
            f"Your deadline leaves {days} day{'s' if days != 1 else ''}; "
            f"{seller.profile.display_name}'s fastest delivery takes {terms['fastest']} days."
        )
        return reasons
    window = [today + timedelta(days=offset) for offset in range(days)]
    away = away_periods_between(user=seller, first_day=today, last_day=deadline - timedelta(days=1))
    away_days = {day for day in window for period in away if period.starts_on <= day <= period.ends_on}
    working_days = days - len(away_days)
    if away and working_days < terms["fastest"]:
        first, last = min(away_days), max(away_days)
        reasons.append(
            f"{seller.profile.display_name} is away from {first:%b %-d} to {last:%b %-d}, which leaves "
            f"{working_days} day{'s' if working_days != 1 else ''} before your deadline; their fastest "
            f"delivery takes {terms['fastest']} days."
        )
    return reasons


def sellers_that_fit(
    *, budget: Decimal, deadline: date, exclude_seller, buyer=None, limit: int = 3, today=None
) -> list[Gig]:
    """Up to `limit` other sellers whose gigs fit the budget and deadline: each one's cheapest
    fitting gig, cheapest sellers first. Two queries."""
    today = today or timezone.localdate()
    fitting = (
        Gig.objects.filter(
            is_active=True,
            price__lte=budget,
            delivery_days__lte=(deadline - today).days,
            seller__is_active=True,
        )
        .exclude(seller=exclude_seller)
        .exclude(seller=buyer)
    )
    cheapest = list(
        fitting.values("seller_id").annotate(lowest=Min("price")).order_by("lowest", "seller_id")[:limit]
    )
    gigs = fitting.filter(seller_id__in=[row["seller_id"] for row in cheapest]).select_related(
        "seller__profile"
    )
    chosen: dict[int, Gig] = {}
    for gig in gigs.order_by("price", "delivery_days", "pk"):
        chosen.setdefault(gig.seller_id, gig)
    return sorted(chosen.values(), key=lambda gig: (gig.price, gig.delivery_days, gig.pk))
