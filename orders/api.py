"""The JSON API for gigs, requests, custom offers, orders and calls.

Each endpoint parses its input, calls one service or selector, and renders with orders.payloads.
Services refuse what is not allowed (marketplace.errors), and the API turns that into
{"error", "detail"} with the right status: nothing changes when a request is refused.
"""

from datetime import date, datetime
from typing import Annotated, Literal

from django.http import Http404
from ninja import Field, Query, Router, Schema, Status
from pydantic import StrictBool, StrictFloat, StrictStr

from inbox import selectors as inbox_selectors
from inbox.api import MessageOut, UserOut
from inbox.models import MAX_ROW_ID
from inbox.payloads import message_payload
from marketplace.accounts.selectors import public_profile
from marketplace.api_inputs import NO_NUL, NOT_BLANK, BodyIn, JsonInt, declared
from marketplace.errors import NotFound

from . import selectors, services
from .models import Order
from .payloads import call_payload, gig_payload, offer_payload, order_payload, request_payload, review_payload

router = Router(tags=["orders"])

# Prices arrive as a string ("120.00") or a JSON number; services.clean_price checks both
# (invalid_price) as declared here.
Money = (
    Annotated[StrictStr, declared(pattern=services.PRICE_PATTERN)]
    | Annotated[StrictFloat, declared(minimum=float(services.PRICE_MIN), maximum=float(services.PRICE_MAX))]
)
MONEY_HELP = f'US dollars, {services.PRICE_MIN} to {services.PRICE_MAX}: a string like "120.00" or a number'
USERNAME = Field(max_length=150, description="A username")


def _text(max_length: int = services.TEXT_MAX, *, required: bool = True, default=...):
    """A text as services.clean_text takes it (invalid_text): no NUL, at most `max_length`
    characters, and (required) not only whitespace."""
    return declared(default, maxLength=max_length, pattern=NOT_BLANK if required else NO_NUL)


# services.clean_delivery_days, clean_revisions (invalid_delivery_days, invalid_revisions)
DeliveryDays = Annotated[JsonInt, declared(minimum=1, maximum=services.DELIVERY_DAYS_MAX)]
Revisions = Annotated[JsonInt, declared(minimum=0, maximum=services.REVISIONS_MAX)]


# --- shapes ---------------------------------------------------------------------------------


class GigOut(Schema):
    id: int
    seller: UserOut
    title: str
    description: str
    price: str = Field(description='Dollars with two decimals, e.g. "120.00"')
    delivery_days: int
    revisions: int
    is_active: bool
    created_at: datetime


class GigList(Schema):
    items: list[GigOut]


class RequestOut(Schema):
    id: int
    buyer: str
    seller: str
    conversation_id: int
    message_id: int | None = Field(description="The request card in the conversation")
    description: str
    budget: str
    deadline: date
    created_at: datetime


class RequestSent(Schema):
    request: RequestOut
    conversation_id: int
    mismatches: list[str] = Field(
        description="Sentences naming what does not fit the seller (empty: it fits)"
    )
    suggestions: list[GigOut] = Field(
        description="Only with mismatches: gigs of up to 3 other sellers whose price and delivery fit"
    )


class OfferOut(Schema):
    id: int
    conversation_id: int
    message_id: int | None = Field(description="The offer card in the conversation")
    seller: str
    buyer: str
    gig_id: int | None
    title: str
    description: str
    price: str
    delivery_days: int
    revisions: int
    status: str = Field(description="pending, accepted, declined, withdrawn or expired")
    expires_at: datetime
    created_at: datetime
    decided_at: datetime | None


class OrderEventOut(Schema):
    kind: str = Field(
        description="created, payment, requirements_submitted, delivered, revision_requested, "
        "completed, cancelled or review"
    )
    actor: str | None = Field(description="Username of who did it")
    created_at: datetime
    data: dict
    message_id: int | None = Field(description="The system message this step posted in the conversation")


class ReviewOut(Schema):
    id: int
    order_number: str
    author: str
    subject: str = Field(description="Username of the person reviewed")
    rating: int
    text: str
    created_at: datetime


class OrderOut(Schema):
    number: str
    title: str
    description: str
    status: str = Field(description="active, delivered, revision_requested, completed or cancelled")
    price: str
    delivery_days: int
    revisions_included: int
    revisions_used: int
    revisions_left: int
    buyer: UserOut
    seller: UserOut
    conversation_id: int
    gig_id: int | None
    offer_id: int | None
    requirements: str
    requirements_submitted_at: datetime | None
    due_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    events: list[OrderEventOut] = Field(description="The timeline, oldest first")
    reviews: list[ReviewOut]


class OrderDetailOut(OrderOut):
    messages: list[MessageOut] = Field(
        description="The conversation's messages about this order, oldest first"
    )


class OrderPage(Schema):
    items: list[OrderOut]
    next_cursor: int | None = Field(description="Pass as `before` for the next page; null on the last")


class CallOut(Schema):
    id: int
    conversation_id: int
    message_id: int | None = Field(description="The call card in the conversation")
    kind: str = Field(description="call or consultation")
    seller: str
    buyer: str
    url: str = Field(description="The meeting link")
    starts_at: datetime | None
    duration_minutes: int | None
    status: str = Field(description="open (a call), offered or booked (a consultation)")
    booked_at: datetime | None
    created_at: datetime


# --- input ----------------------------------------------------------------------------------


class GigsQuery(Schema):
    seller: str | None = Field(None, max_length=150, description="Only this seller's gigs (a username)")
    limit: int = Field(24, ge=1, le=100, description="Without `seller`: how many of the newest")


GigTitle = Annotated[str, _text(120)]
GigDescription = Annotated[str, _text(5000)]


class GigIn(BodyIn):
    title: GigTitle
    description: GigDescription
    price: Money = Field(description=MONEY_HELP)
    delivery_days: DeliveryDays
    revisions: Revisions = 1


class GigPatch(BodyIn):
    title: GigTitle | None = None
    description: GigDescription | None = None
    price: Money | None = Field(None, description=MONEY_HELP)
    delivery_days: DeliveryDays | None = None
    revisions: Revisions | None = None
    is_active: StrictBool | None = None


class RequestIn(BodyIn):
    seller: str = USERNAME
    description: str = _text()
    budget: Money = Field(description=MONEY_HELP)
    deadline: date = Field(description="e.g. 2026-12-24: after today, within 365 days")


class OfferIn(BodyIn):
    gig_id: JsonInt | None = Field(None, description="One of your gigs: its terms fill what is not given")
    # Empty: the start of the description. `(?!\n)`: Python's `$` also matches before a newline.
    title: Annotated[str, declared(maxLength=120, pattern=f"^$(?!\\n)|{NOT_BLANK}")] | None = None
    description: str = _text()
    price: Money | None = Field(None, description=MONEY_HELP)
    delivery_days: DeliveryDays | None = None
    revisions: Revisions | None = None
    expires_in_days: JsonInt = declared(
        7,
        description=f"1 to {services.OFFER_EXPIRY_DAYS_MAX}",
        minimum=1,
        maximum=services.OFFER_EXPIRY_DAYS_MAX,
    )

    # invalid_offer: without a gig, the price and the delivery time are given.
    model_config = {
        "json_schema_extra": {
            "anyOf": [
                {"properties": {"gig_id": {"type": "integer"}}, "required": ["gig_id"]},
                {
                    "properties": {"price": {"not": {"type": "null"}}, "delivery_days": {"type": "integer"}},
                    "required": ["price", "delivery_days"],
                },
            ]
        }
    }


class OrdersQuery(Schema):
    # selectors.orders_for_user checks both (invalid_role, invalid_status)
    role: Annotated[str, declared(enum=["buyer", "seller"])] | None = Field(
        None, max_length=20, description="buyer or seller (default: both)"
    )
    status: Annotated[str, declared(enum=["open", *Order.Status.values])] | None = Field(
        None, max_length=20, description="open, or one status"
    )
    before: int | None = Field(None, ge=1, le=MAX_ROW_ID, description="`next_cursor` of the previous page")


class RequirementsIn(BodyIn):
    requirements: str = _text()


class DeliveryIn(BodyIn):
    message: str = _text()


class RevisionIn(BodyIn):
    reason: str = _text()


class CancelIn(BodyIn):
    reason: str = _text()


class ReviewIn(BodyIn):
    rating: JsonInt = declared(description="1 to 5 stars", minimum=1, maximum=5)  # invalid_rating
    text: str = _text(required=False, default="")


class CallIn(BodyIn):
    kind: Literal["call", "consultation"]
    starts_at: datetime | None = Field(None, description="Consultations: when, with a time zone")
    duration_minutes: Annotated[JsonInt, declared(minimum=15, maximum=240)] | None = Field(
        None,
        description="Consultations: 15 to 240",  # invalid_duration
    )

    # A consultation says when and how long.
    model_config = {
        "json_schema_extra": {
            "anyOf": [
                {"properties": {"kind": {"const": "call"}}},
                {
                    "properties": {"starts_at": {"type": "string"}, "duration_minutes": {"type": "integer"}},
                    "required": ["starts_at", "duration_minutes"],
                },
            ]
        }
    }


# --- helpers --------------------------------------------------------------------------------


def _person(username: str):
    try:
        return public_profile(username=username)
    except Http404:
        raise NotFound(f"There is no user called {username!r}.", code="unknown_user") from None


def _order_out(user, number: str, *, messages: bool = False) -> dict:
    """The order as its buyer or seller sees it, read afresh (after a change, too)."""
    order = selectors.order_for_user(user=user, number=number)
    selectors.attach_order_details([order])
    payload = order_payload(order)
    if messages:
        payload["messages"] = [message_payload(m) for m in selectors.order_messages(order=order, viewer=user)]
    return payload


def _gig_id(gig_id: int) -> int:
    if not 0 < gig_id <= MAX_ROW_ID:  # names no row (and SQLite overflows past 64 bits)
        raise NotFound("Gig not found.")
    return gig_id


# --- gigs -----------------------------------------------------------------------------------


@router.get("/gigs", response=GigList)
def list_gigs(request, query: Query[GigsQuery]):
    """Active gigs, newest first; with `seller`, all of that seller's active gigs."""
    if query.seller is not None:
        gigs = selectors.gigs_of_seller(seller=_person(query.seller))
    else:
        gigs = selectors.active_gigs(limit=query.limit)
    return {"items": [gig_payload(gig) for gig in gigs]}


@router.get("/gigs/{int:gig_id}", response=GigOut)
def get_gig(request, gig_id: int):
    """An active gig (a hidden one is not found, even by its seller: use PATCH to show it again)."""
    return gig_payload(selectors.gig_detail(gig_id=_gig_id(gig_id)))


@router.post("/gigs", response={201: GigOut})
def create_gig(request, payload: GigIn):
    """Publish a gig. Sellers only."""
    gig = services.create_gig(seller=request.user, **payload.model_dump())
    return Status(201, gig_payload(gig))


@router.patch("/gigs/{int:gig_id}", response=GigOut)
def update_gig(request, gig_id: int, payload: GigPatch):
    """Change one of your gigs; `is_active: false` hides it, `true` shows it again."""
    gig = selectors.gig_of_seller(seller=request.user, gig_id=gig_id)
    gig = services.update_gig(seller=request.user, gig=gig, **payload.model_dump(exclude_unset=True))
    return gig_payload(gig)


# --- requests -------------------------------------------------------------------------------


@router.post("/requests", response={201: RequestSent})
def send_request(request, payload: RequestIn):
    """A brief to a seller: opens or joins the conversation with them as a request card. The
    answer says what does not fit the seller's gigs and suggests sellers that do."""
    buyer_request = services.send_request(
        buyer=request.user,
        seller=_person(payload.seller),
        description=payload.description,
        budget=payload.budget,
        deadline=payload.deadline,
    )
    mismatches = selectors.request_mismatches(
        seller=buyer_request.seller, budget=buyer_request.budget, deadline=buyer_request.deadline
    )
    suggestions = (
        selectors.sellers_that_fit(
            budget=buyer_request.budget,
            deadline=buyer_request.deadline,
            exclude_seller=buyer_request.seller,
            buyer=request.user,
        )
        if mismatches
        else []
    )
    return Status(
        201,
        {
            "request": request_payload(buyer_request),
            "conversation_id": buyer_request.conversation_id,
            "mismatches": mismatches,
            "suggestions": [gig_payload(gig) for gig in suggestions],
        },
    )


# --- custom offers --------------------------------------------------------------------------


@router.post("/conversations/{int:conversation_id}/offers", response={201: OfferOut})
def create_offer(request, conversation_id: int, payload: OfferIn):
    """A seller's custom offer to the other person of the conversation, as a card in the thread."""
    membership = inbox_selectors.conversation_for_user(user=request.user, conversation_id=conversation_id)
    gig = (
        selectors.gig_of_seller(seller=request.user, gig_id=payload.gig_id)
        if payload.gig_id is not None
        else None
    )
    offer = services.create_offer(
        seller=request.user,
        conversation=membership.conversation,
        gig=gig,
        title=payload.title or "",
        description=payload.description,
        price=payload.price,
        delivery_days=payload.delivery_days,
        revisions=payload.revisions,
        expires_in_days=payload.expires_in_days,
    )
    return Status(201, offer_payload(offer))


@router.post("/offers/{int:offer_id}/accept", response={201: OrderOut})
def accept_offer(request, offer_id: int):
    """The buyer accepts a pending offer: the order starts. Once only (a retry is 409)."""
    offer = selectors.offer_for_user(user=request.user, offer_id=offer_id)
    order = services.accept_offer(buyer=request.user, offer=offer)
    return Status(201, _order_out(request.user, order.number))


@router.post("/offers/{int:offer_id}/decline", response=OfferOut)
def decline_offer(request, offer_id: int):
    offer = selectors.offer_for_user(user=request.user, offer_id=offer_id)
    return offer_payload(services.decline_offer(buyer=request.user, offer=offer))


@router.post("/offers/{int:offer_id}/withdraw", response=OfferOut)
def withdraw_offer(request, offer_id: int):
    offer = selectors.offer_for_user(user=request.user, offer_id=offer_id)
    return offer_payload(services.withdraw_offer(seller=request.user, offer=offer))


# --- orders ---------------------------------------------------------------------------------


@router.get("/orders", response=OrderPage)
def list_orders(request, query: Query[OrdersQuery]):
    """Your orders, newest first, 20 a page."""
    orders, next_cursor = selectors.orders_for_user(
        user=request.user, role=query.role, status=query.status, before=query.before
    )
    selectors.attach_order_details(orders)
    return {"items": [order_payload(order) for order in orders], "next_cursor": next_cursor}


@router.get("/orders/{number}", response=OrderDetailOut)
def get_order(request, number: str):
    """An order you bought or sold, with its timeline and the conversation's messages about it."""
    return _order_out(request.user, number, messages=True)


@router.post("/orders/{number}/requirements", response=OrderOut)
def submit_requirements(request, number: str, payload: RequirementsIn):
    order = selectors.order_for_user(user=request.user, number=number)
    order = services.submit_requirements(buyer=request.user, order=order, requirements=payload.requirements)
    return _order_out(request.user, order.number)


@router.post("/orders/{number}/deliver", response=OrderOut)
def deliver_order(request, number: str, payload: DeliveryIn):
    order = selectors.order_for_user(user=request.user, number=number)
    order = services.deliver_order(seller=request.user, order=order, message=payload.message)
    return _order_out(request.user, order.number)


@router.post("/orders/{number}/revision", response=OrderOut)
def request_revision(request, number: str, payload: RevisionIn):
    order = selectors.order_for_user(user=request.user, number=number)
    order = services.request_revision(buyer=request.user, order=order, reason=payload.reason)
    return _order_out(request.user, order.number)


@router.post("/orders/{number}/complete", response=OrderOut)
def complete_order(request, number: str):
    order = selectors.order_for_user(user=request.user, number=number)
    order = services.complete_order(buyer=request.user, order=order)
    return _order_out(request.user, order.number)


@router.post("/orders/{number}/cancel", response=OrderOut)
def cancel_order(request, number: str, payload: CancelIn):
    order = selectors.order_for_user(user=request.user, number=number)
    order = services.cancel_order(user=request.user, order=order, reason=payload.reason)
    return _order_out(request.user, order.number)


@router.post("/orders/{number}/reviews", response={201: ReviewOut})
def leave_review(request, number: str, payload: ReviewIn):
    order = selectors.order_for_user(user=request.user, number=number)
    review = services.leave_review(author=request.user, order=order, rating=payload.rating, text=payload.text)
    return Status(201, review_payload(review))


# --- calls ----------------------------------------------------------------------------------


@router.post("/conversations/{int:conversation_id}/calls", response={201: CallOut})
def start_call(request, conversation_id: int, payload: CallIn):
    """A seller starts a video call now, or offers a consultation slot for the buyer to book."""
    membership = inbox_selectors.conversation_for_user(user=request.user, conversation_id=conversation_id)
    if payload.kind == "call":
        call = services.start_call(seller=request.user, conversation=membership.conversation)
    else:
        call = services.offer_consultation(
            seller=request.user,
            conversation=membership.conversation,
            starts_at=payload.starts_at,
            duration_minutes=payload.duration_minutes,
        )
    return Status(201, call_payload(call))


@router.post("/calls/{int:call_id}/book", response=CallOut)
def book_consultation(request, call_id: int):
    """The buyer books a consultation slot (once)."""
    call = selectors.call_for_user(user=request.user, call_id=call_id)
    return call_payload(services.book_consultation(buyer=request.user, call=call))
