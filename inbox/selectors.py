"""Reads for pages and the API. Each runs a fixed number of queries whatever the data size."""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Q

from marketplace.errors import Gone, InvalidInput, NotFound

from .models import Event, EventLogHead, Membership, Message

MAX_ROW_ID = 2**63 - 1  # ids are 64-bit (BigAutoField)


@dataclass
class Page:
    items: list
    next_cursor: str | int | None


def conversation_for_user(*, user, conversation_id, details: bool = False) -> Membership:
    """The user's membership in a conversation, or NotFound: a stranger learns nothing, not even
    that the conversation exists. `details` also loads what a conversation is shown with (the
    other person's profile, the last message); a write needs only the conversation."""
    if not user.is_authenticated:
        raise NotFound("Conversation not found.")
    try:
        conversation_id = int(conversation_id)
    except (TypeError, ValueError):
        raise NotFound("Conversation not found.") from None
    if not 0 < conversation_id <= MAX_ROW_ID:
        # No row has such an id, and SQLite raises OverflowError on integers past 64 bits.
        raise NotFound("Conversation not found.")
    related = ("conversation__last_message__sender", "other_user__profile") if details else ("conversation",)
    membership = (
        Membership.objects.select_related(*related).filter(user=user, conversation_id=conversation_id).first()
    )
    if membership is None:
        raise NotFound("Conversation not found.")
    return membership


def conversation_between(*, user, other_user) -> Membership | None:
    return Membership.objects.filter(user=user, other_user=other_user).first()


def _encode_cursor(values: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> dict:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, dict):
            raise ValueError
        return values
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("The cursor is not one this server handed out.", code="invalid_cursor") from None


def _clamp_limit(limit: int | None, *, default: int, maximum: int) -> int:
    if limit is None:
        return default
    if limit < 1 or limit > maximum:
        raise InvalidInput(f"limit must be between 1 and {maximum}.", code="invalid_limit")
    return limit


def inbox_page(*, user, cursor: str | None = None, limit: int | None = None) -> Page:
    """A user's conversations, most recent activity first (keyset on last_message_at, id)."""
    limit = _clamp_limit(limit, default=30, maximum=100)
    memberships = Membership.objects.filter(user=user).select_related(
        "other_user__profile", "conversation__last_message__sender"
    )
    if cursor:
        values = _decode_cursor(cursor)
        try:
            at, pk = datetime.fromisoformat(values["at"]), int(values["id"])
        except (KeyError, TypeError, ValueError):
            raise InvalidInput(
                "The cursor is not one this server handed out.", code="invalid_cursor"
            ) from None
        memberships = memberships.filter(Q(last_message_at__lt=at) | Q(last_message_at=at, id__lt=pk))
    rows = list(memberships.order_by("-last_message_at", "-id")[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = _encode_cursor({"at": last.last_message_at.isoformat(), "id": last.pk})
    other_reads = dict(
        Membership.objects.filter(conversation_id__in=[m.conversation_id for m in rows])
        .exclude(user=user)
        .values_list("conversation_id", "last_read_message_id")
    )
    for membership in rows:
        membership.other_last_read_message_id = other_reads.get(membership.conversation_id)
    return Page(items=rows, next_cursor=next_cursor)


def other_last_read_message_id(*, membership: Membership) -> int | None:
    """How far the other participant has read: what "Seen" is computed from."""
    return (
        Membership.objects.filter(
            conversation_id=membership.conversation_id, user_id=membership.other_user_id
        )
        .values_list("last_read_message_id", flat=True)
        .first()
    )


def thread_page(
    *, membership: Membership, cursor: str | None = None, after: int | None = None, limit: int | None = None
) -> Page:
    """Messages of a conversation, newest first; `next_cursor` goes further back. With `after`,
    only messages newer than that id, oldest first (what a live page appends)."""
    limit = _clamp_limit(limit, default=50, maximum=200)
    messages = Message.objects.filter(conversation_id=membership.conversation_id).select_related("sender")
    if after is not None:
        rows = list(messages.filter(id__gt=after).order_by("id")[:limit])
        return Page(items=rows, next_cursor=None)
    if cursor:
        try:
            before = int(cursor)
        except ValueError:
            raise InvalidInput(
                "The cursor is not one this server handed out.", code="invalid_cursor"
            ) from None
        messages = messages.filter(id__lt=before)
    rows = list(messages.order_by("-id")[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = str(rows[-1].pk)
    return Page(items=rows, next_cursor=next_cursor)


def head_cursor(*, user_id: int) -> int:
    """The last cursor handed out to a user (0 before their first event)."""
    return EventLogHead.objects.filter(user_id=user_id).values_list("last_cursor", flat=True).first() or 0


def events_since(*, user, since: int, limit: int | None = None) -> Page:
    """Events after `since`, oldest first. Gone when some of them were already pruned."""
    limit = _clamp_limit(limit, default=settings.EVENTS_PAGE_MAX, maximum=settings.EVENTS_PAGE_MAX)
    if since < 0:
        raise InvalidInput("since must be 0 or a cursor you received.", code="invalid_cursor")
    head = EventLogHead.objects.filter(user_id=user.pk).values_list("pruned_through", "last_cursor").first()
    pruned_through, last_cursor = head or (0, 0)
    if since < pruned_through:
        raise Gone(
            f"Events up to cursor {pruned_through} were pruned: reload your conversations, then follow "
            f"events from cursor {last_cursor}.",
            code="resync_required",
            cursor=last_cursor,
        )
    rows = list(Event.objects.filter(user=user, cursor__gt=since).order_by("cursor")[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = rows[-1].cursor
    return Page(items=rows, next_cursor=next_cursor)
