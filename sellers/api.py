"""Seller tools over the API (/api/v1/seller/...): the dashboard, availability, auto-reply and
quick responses. Buyers get 403 not_a_seller."""

from datetime import date, datetime
from typing import Annotated

from django.conf import settings
from ninja import Field, Query, Router, Schema, Status
from pydantic import StrictBool

from inbox import selectors as inbox_selectors
from inbox import services as inbox_services
from inbox.api import AwayOut, UserOut
from inbox.payloads import away_payload, iso_timestamp, user_summary
from inbox.placeholders import (
    AUTO_REPLY_PLACEHOLDERS,
    QUICK_RESPONSE_PLACEHOLDERS,
    known_placeholders_pattern,
)
from inbox.services.replies import QUICK_RESPONSE_TITLE_MAX
from marketplace.accounts import selectors as account_selectors
from marketplace.accounts import services as account_services
from marketplace.api_inputs import NO_NUL, NOT_BLANK, BodyIn
from marketplace.errors import Forbidden

router = Router(tags=["seller tools"])


def _seller(request):
    if not request.user.profile.is_seller:
        raise Forbidden("Seller tools are for sellers.", code="not_a_seller")
    return request.user


def _seconds(value) -> int | None:
    return round(value.total_seconds()) if value is not None else None


class TrendPointOut(Schema):
    day: date = Field(description="A day of the seller's calendar")
    inbox_rate: int | None = Field(description="The inbox response rate at the end of that day")
    order_rate: int | None = Field(description="The order response rate at the end of that day")


class AwaitingOut(Schema):
    conversation_id: int
    buyer: UserOut
    arrived_at: datetime
    deadline: datetime = Field(description="arrived_at + 24 hours")
    seconds_left: int = Field(description="Negative once the 24 hours are over")
    counted: bool = Field(description="false: it arrived while you were away and does not count")


class DashboardOut(Schema):
    inbox_response_rate: int | None = Field(description="% of first messages answered within 24 h, 60 days")
    inbox_counted: int
    order_response_rate: int | None = Field(description="% of order messages answered within 24 h, 60 days")
    order_counted: int
    average_response_seconds: int | None
    trend: list[TrendPointOut] = Field(description="The last 60 days, oldest first")
    awaiting_first_answer: list[AwaitingOut] = Field(description="Most urgent first, the late ones last")


@router.get("/seller/dashboard", response=DashboardOut)
def dashboard(request):
    board = inbox_selectors.seller_dashboard(seller=_seller(request))
    figures = board.figures
    return {
        "inbox_response_rate": figures.inbox_rate,
        "inbox_counted": figures.inbox_counted,
        "order_response_rate": figures.order_rate,
        "order_counted": figures.order_counted,
        "average_response_seconds": _seconds(figures.average_response),
        "trend": [
            {"day": point.day.isoformat(), "inbox_rate": point.inbox_rate, "order_rate": point.order_rate}
            for point in board.trend
        ],
        "awaiting_first_answer": [
            {
                "conversation_id": item.conversation_id,
                "buyer": user_summary(item.buyer),
                "arrived_at": iso_timestamp(item.arrived_at),
                "deadline": iso_timestamp(item.deadline),
                "seconds_left": _seconds(item.time_left),
                "counted": item.counted,
            }
            for item in board.awaiting
        ],
    }


class AvailabilityOut(Schema):
    away_now: AwayOut | None = Field(description="The period you are in today (your calendar), if any")
    planned: list[AwayOut] = Field(description="Current and coming periods, soonest first")


class AvailabilityIn(BodyIn):
    starts_on: date = Field(description="First day away (today or later, your calendar)")
    ends_on: date = Field(description="Last day away, inclusive")
    message: str = Field(
        "", max_length=300, description="Shown to buyers", json_schema_extra={"pattern": NO_NUL}
    )


def _availability(user) -> dict:
    return {
        "away_now": away_payload(account_selectors.current_away(user=user)),
        "planned": [away_payload(period) for period in account_selectors.planned_away(user=user)],
    }


@router.get("/seller/availability", response=AvailabilityOut)
def get_availability(request):
    return _availability(_seller(request))


@router.put("/seller/availability", response=AvailabilityOut)
def set_availability(request, payload: AvailabilityIn):
    """Plan time away; it replaces any planned period it overlaps."""
    user = _seller(request)
    account_services.set_away(
        user=user, starts_on=payload.starts_on, ends_on=payload.ends_on, message=payload.message
    )
    return _availability(user)


@router.delete("/seller/availability", response=AvailabilityOut)
def end_availability(request):
    """Back early: the current period ends yesterday, coming ones are removed."""
    user = _seller(request)
    account_services.end_away(user=user)
    return _availability(user)


class AutoReplyOut(Schema):
    body: str
    enabled: bool


def _saved_text(placeholders) -> dict:
    """A saved text as inbox.services.replies takes it: a message's limits (body_too_long,
    invalid_body) and only known placeholders (unknown_placeholder)."""
    return {
        "maxLength": settings.MESSAGE_MAX_LENGTH,
        "allOf": [{"pattern": NO_NUL}, {"pattern": known_placeholders_pattern(placeholders)}],
    }


class AutoReplyIn(BodyIn):
    body: str = Field(
        max_length=settings.MESSAGE_MAX_LENGTH + 1,
        description="May be empty while `enabled` is false",
        json_schema_extra=_saved_text(AUTO_REPLY_PLACEHOLDERS),
    )
    enabled: StrictBool

    # empty_body: an auto-reply that is on says something.
    model_config = {
        "json_schema_extra": {
            "anyOf": [
                {"properties": {"enabled": {"const": False}}},
                {"properties": {"body": {"pattern": NOT_BLANK}}},
            ]
        }
    }


@router.get("/seller/auto-reply", response=AutoReplyOut)
def get_auto_reply(request):
    saved = inbox_selectors.auto_reply_of(user=_seller(request))
    return {"body": saved.body if saved else "", "enabled": bool(saved and saved.enabled)}


@router.put("/seller/auto-reply", response=AutoReplyOut)
def put_auto_reply(request, payload: AutoReplyIn):
    saved = inbox_services.save_auto_reply(user=_seller(request), body=payload.body, enabled=payload.enabled)
    return {"body": saved.body, "enabled": saved.enabled}


class QuickResponseOut(Schema):
    id: int
    title: str
    body: str = Field(description="As saved, with its placeholders")
    text: str | None = Field(description="Filled for conversation_id, when given")


# invalid_title; a message's text with known placeholders (empty_body, unknown_placeholder ...)
QuickTitle = Annotated[
    str,
    Field(max_length=200, json_schema_extra={"maxLength": QUICK_RESPONSE_TITLE_MAX, "pattern": NOT_BLANK}),
]
_quick_body = _saved_text(QUICK_RESPONSE_PLACEHOLDERS)
QuickBody = Annotated[
    str,
    Field(
        max_length=settings.MESSAGE_MAX_LENGTH + 1,
        json_schema_extra={**_quick_body, "allOf": [{"pattern": NOT_BLANK}, _quick_body["allOf"][1]]},
    ),
]


class QuickResponseIn(BodyIn):
    title: QuickTitle
    body: QuickBody


class QuickResponsePatch(BodyIn):
    title: QuickTitle | None = None
    body: QuickBody | None = None


class QuickResponsesQuery(Schema):
    conversation_id: int | None = Field(None, description="Fill the placeholders for this conversation")


def _quick_response_out(quick_response) -> dict:
    return {"id": quick_response.pk, "title": quick_response.title, "body": quick_response.body, "text": None}


@router.get("/seller/quick-responses", response=list[QuickResponseOut])
def list_quick_responses(request, query: Query[QuickResponsesQuery]):
    """Your quick responses by title; with conversation_id, `text` is each one filled for it."""
    user = _seller(request)
    if query.conversation_id is None:
        return [_quick_response_out(q) for q in inbox_selectors.quick_responses_of(user=user)]
    membership = inbox_selectors.conversation_for_user(
        user=user, conversation_id=query.conversation_id, details=True
    )
    filled = inbox_selectors.quick_responses_for_conversation(user=user, membership=membership)
    return [{"id": q.id, "title": q.title, "body": q.body, "text": q.text} for q in filled]


@router.post("/seller/quick-responses", response={201: QuickResponseOut})
def create_quick_response(request, payload: QuickResponseIn):
    created = inbox_services.create_quick_response(
        user=_seller(request), title=payload.title, body=payload.body
    )
    return Status(201, _quick_response_out(created))


@router.patch("/seller/quick-responses/{int:quick_response_id}", response=QuickResponseOut)
def update_quick_response(request, quick_response_id: int, payload: QuickResponsePatch):
    quick_response = inbox_selectors.quick_response_for_user(
        user=_seller(request), quick_response_id=quick_response_id
    )
    updated = inbox_services.update_quick_response(
        quick_response=quick_response, title=payload.title, body=payload.body
    )
    return _quick_response_out(updated)


@router.delete("/seller/quick-responses/{int:quick_response_id}", response={204: None})
def delete_quick_response(request, quick_response_id: int):
    quick_response = inbox_selectors.quick_response_for_user(
        user=_seller(request), quick_response_id=quick_response_id
    )
    inbox_services.delete_quick_response(quick_response=quick_response)
    return Status(204, None)
