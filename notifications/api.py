"""The JSON API for the bell: notifications, their preferences, and Web Push subscriptions.

Each endpoint calls one service or selector; refusals come back as {"error", "detail"}
(marketplace.errors), and nothing changes when a request is refused.
"""

from datetime import datetime
from typing import Annotated

from ninja import Body, Field, Query, Router, Schema, Status
from pydantic import StrictBool, WithJsonSchema

from inbox.models import MAX_ROW_ID
from marketplace.api_inputs import NO_NUL, BodyIn, declared
from marketplace.errors import NotFound

from . import selectors, services
from .models import Channel, Kind
from .payloads import notification_payload

router = Router(tags=["notifications"])


class NotificationOut(Schema):
    id: int
    kind: str = Field(description=", ".join(Kind.values))
    title: str = Field(description="One line, e.g. “Sam Seller delivered order #FOU5BDFBZ8”")
    body: str = Field(description="A line more (an excerpt of what was written), or empty")
    url: str = Field(description="Where to act on it: a path on the site, e.g. /orders/FOU5BDFBZ8/")
    created_at: datetime
    read: bool


class NotificationPage(Schema):
    items: list[NotificationOut]
    next_cursor: str | None
    unread_count: int = Field(description="Unread notifications in the bell (all pages)")


class ReadOut(Schema):
    notification: NotificationOut
    unread_count: int


class ReadAllOut(Schema):
    marked: int = Field(description="How many were unread and are now read")
    unread_count: int


class PageQuery(Schema):
    cursor: (
        Annotated[str, Field(max_length=200, json_schema_extra={"pattern": selectors.CURSOR_PATTERN})] | None
    ) = Field(None, description="`next_cursor` of the previous page (invalid_cursor for any other)")
    limit: Annotated[int, declared(minimum=1, maximum=selectors.PAGE_MAX)] | None = Field(
        None,
        description=f"1 to {selectors.PAGE_MAX}, default {selectors.PAGE_DEFAULT}",  # invalid_limit
    )


Preferences = dict[str, dict[str, StrictBool]]
# The kinds and channels are the keys: set_preferences refuses others (invalid_kind, invalid_channel).
PreferenceChanges = Annotated[
    Preferences,
    WithJsonSchema(
        {
            "type": "object",
            "properties": {
                kind: {
                    "type": "object",
                    "properties": {channel: {"type": "boolean"} for channel in Channel.values},
                    "additionalProperties": False,
                }
                for kind in Kind.values
            },
            "additionalProperties": False,
        }
    ),
]
PREFERENCES_BODY = Body(
    ...,
    description=f"{{kind: {{channel: true or false}}}}. Kinds: {', '.join(Kind.values)}. "
    f"Channels: {', '.join(Channel.values)}.",
)


def _push_key(longest: int):
    # invalid_subscription: 1 to `longest` ASCII characters, no NUL
    return Field(
        max_length=1000,
        pattern=NO_NUL,
        json_schema_extra={"minLength": 1, "maxLength": longest, "pattern": r"^[\x01-\x7f]*$"},
    )


class PushKeysIn(BodyIn):
    p256dh: str = _push_key(services.PUSH_P256DH_MAX)
    auth: str = _push_key(services.PUSH_AUTH_MAX)


class PushSubscriptionIn(BodyIn):
    """What the browser's PushSubscription.toJSON() gives (expirationTime is ignored)."""

    endpoint: str = Field(
        max_length=2000,
        pattern=NO_NUL,
        description="The push service's https URL",
        json_schema_extra={
            "maxLength": services.PUSH_ENDPOINT_MAX,
            "pattern": services.PUSH_ENDPOINT_PATTERN,
        },
    )
    keys: PushKeysIn


class PushSubscriptionOut(Schema):
    endpoint: str
    created_at: datetime


class PushEndpointIn(BodyIn):
    endpoint: str = Field(max_length=2000, pattern=NO_NUL)


class PushEndpointQuery(Schema):
    endpoint: str | None = Field(None, max_length=2000, pattern=NO_NUL)


@router.get("/notifications", response=NotificationPage)
def list_notifications(request, query: Query[PageQuery]):
    """Your notifications in the bell, newest first; `next_cursor` pages further back."""
    page = selectors.notifications_page(user=request.user, cursor=query.cursor, limit=query.limit)
    return {
        "items": [notification_payload(n) for n in page.items],
        "next_cursor": page.next_cursor,
        "unread_count": selectors.unread_count(user=request.user),
    }


@router.post("/notifications/read-all", response=ReadAllOut)
def mark_all_read(request):
    """Mark all your notifications read (your other tabs get `notification.read`)."""
    marked = services.mark_all_read(user=request.user)
    return {"marked": marked, "unread_count": selectors.unread_count(user=request.user)}


@router.post("/notifications/{int:notification_id}/read", response=ReadOut)
def mark_read(request, notification_id: int):
    """Mark one of your notifications read. Reading it again changes nothing."""
    if not 0 < notification_id <= MAX_ROW_ID:
        raise NotFound("Notification not found.")
    notification = services.mark_read(user=request.user, notification_id=notification_id)
    return {
        "notification": notification_payload(notification),
        "unread_count": selectors.unread_count(user=request.user),
    }


@router.get("/notifications/preferences", response=Preferences)
def get_preferences(request):
    """Every kind on every channel: whether you get it (defaults filled in)."""
    return selectors.preferences(user=request.user)


@router.patch("/notifications/preferences", response=Preferences)
def update_preferences(request, payload: PreferenceChanges = PREFERENCES_BODY):
    """Turn kinds on or off per channel; what you leave out stays as it is. An unknown kind or
    channel changes nothing (422). Answers with the whole matrix."""
    return services.set_preferences(user=request.user, changes=payload)


@router.post("/push-subscriptions", response={201: PushSubscriptionOut})
def add_push_subscription(request, payload: PushSubscriptionIn):
    """Subscribe this browser to Web Push (again is fine: the endpoint is stored once)."""
    subscription = services.add_push_subscription(
        user=request.user,
        endpoint=payload.endpoint,
        p256dh=payload.keys.p256dh,
        auth=payload.keys.auth,
    )
    return Status(201, {"endpoint": subscription.endpoint, "created_at": subscription.created_at})


@router.delete("/push-subscriptions", response={204: None})
def remove_push_subscription(request, query: Query[PushEndpointQuery], payload: PushEndpointIn | None = None):
    """Unsubscribe a browser: `endpoint` in the body or the query. One that is not yours, or
    not subscribed, changes nothing."""
    endpoint = payload.endpoint if payload is not None else query.endpoint
    if not endpoint:  # names no subscription: 404, as the schema cannot require one of the two
        raise NotFound("Say which endpoint: in the body or as ?endpoint=.", code="invalid_subscription")
    services.remove_push_subscription(user=request.user, endpoint=endpoint)
    return Status(204, None)
