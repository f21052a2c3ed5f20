"""The JSON shapes of users, messages and conversations, shared by the API and the event log."""

from datetime import datetime
from zoneinfo import ZoneInfo

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from attachments.payloads import attachment_payload

from .models import Label, Membership, Message

_json_encoder = DjangoJSONEncoder()


def iso_timestamp(value):
    """The same form the API's responses use (ISO 8601, milliseconds, Z for UTC). Truncated to
    the millisecond first: the encoder writes ".000" for 1 to 999 microseconds, while a response
    schema that parsed that string back writes nothing, and the event and the REST answer for
    one message would differ."""
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.replace(microsecond=value.microsecond // 1000 * 1000)
    return _json_encoder.default(value)


def user_summary(user) -> dict:
    profile = user.profile
    return {
        "id": user.pk,
        "username": user.username,
        "display_name": profile.display_name,
        "avatar_initials": profile.avatar_initials,
        "is_seller": profile.is_seller,
        "timezone": profile.timezone,
    }


QUOTE_LENGTH = 140


def quote_payload(message: Message) -> dict:
    """What a reply shows of the message it answers."""
    text = "" if message.is_deleted else message.body
    return {
        "id": message.pk,
        "sender": message.sender.username,
        "excerpt": text if len(text) <= QUOTE_LENGTH else text[: QUOTE_LENGTH - 1] + "…",
        "deleted": message.is_deleted,
    }


def message_payload(message: Message) -> dict:
    """A message as participants see it: a deleted one keeps its place but not its text."""
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "sender": message.sender.username,
        "body": "" if message.is_deleted else message.body,
        "status": message.status,
        # Only a held or refused message has a reason, and only its sender ever receives those.
        "moderation_reason": message.moderation_reason or None
        if message.status != Message.Status.VISIBLE
        else None,
        "client_id": str(message.client_id),
        "created_at": iso_timestamp(message.created_at),
        "edited_at": iso_timestamp(message.edited_at),
        "deleted": message.is_deleted,
        "reply_to": quote_payload(message.reply_to) if message.reply_to_id else None,
        "kind": message.kind,
        "order": {"id": message.order_id, "number": message.order.number} if message.order_id else None,
        "card": message.card or None,
        "is_automatic": message.is_automatic,
        "attachments": [attachment_payload(a) for a in message.attachments.all()],
    }


def label_payload(label: Label) -> dict:
    return {"id": label.pk, "name": label.name, "color": label.color, "shared": label.is_shared}


def membership_state(membership: Membership, *, label_ids: list[int]) -> dict:
    """How the user has filed the conversation (their own view; the other person's differs)."""
    return {
        "conversation_id": membership.conversation_id,
        "unread_count": membership.unread_count,
        "starred": membership.starred_at is not None,
        "archived": membership.archived_at is not None,
        "spam": membership.spam_at is not None,
        "deleted": membership.deleted_at is not None,
        "labels": label_ids,
        "has_custom_offer": membership.has_custom_offer,
        "has_request": membership.has_request,
    }


def needs_reply(membership: Membership, last_message: Message | None) -> bool:
    """The last word is the other person's (inbox.selectors._NEEDS_REPLY, for one row)."""
    if last_message is None:
        return False
    if last_message.is_automatic:
        return last_message.sender_id == membership.user_id
    return last_message.sender_id == membership.other_user_id and not last_message.is_deleted


def conversation_payload(
    membership: Membership, *, label_ids: list[int], other_last_read_message_id: int | None = None
) -> dict:
    last_message = membership.conversation.last_message
    state = membership_state(membership, label_ids=label_ids)
    del state["conversation_id"]
    return {
        "id": membership.conversation_id,
        "other_user": user_summary(membership.other_user),
        "last_message": message_payload(last_message) if last_message else None,
        "last_message_at": iso_timestamp(membership.last_message_at),
        "last_read_message_id": membership.last_read_message_id,
        "other_last_read_message_id": other_last_read_message_id,
        "needs_reply": needs_reply(membership, last_message),
        "draft": membership.draft,
        **state,
    }


def away_payload(away) -> dict | None:
    """A seller's "Set availability" period as buyers see it (accounts.AwayPeriod)."""
    if away is None:
        return None
    return {
        "starts_on": away.starts_on.isoformat(),
        "ends_on": away.ends_on.isoformat(),
        "message": away.message,
    }


def panel_payload(panel) -> dict:
    """The side panel about the other person (inbox.selectors.other_person_panel)."""
    other, standing, figures = panel.other, panel.standing, panel.figures
    zone = ZoneInfo(other.profile.timezone or "UTC")
    return {
        "user": user_summary(other),
        "online": panel.online,
        "local_time": timezone.localtime(timezone=zone).isoformat(timespec="minutes"),
        "languages": list(other.profile.languages or []),
        "member_since": iso_timestamp(other.date_joined),
        "top_buyer": None
        if standing is None
        else {
            "is_top_buyer": standing.is_top_buyer,
            "completed_orders": standing.completed_orders,
            "spent": f"{standing.spent:.2f}",
        },
        "response": None
        if figures is None
        else {
            "average_response_seconds": round(figures.average_response.total_seconds())
            if figures.average_response is not None
            else None,
            "inbox_response_rate": figures.inbox_rate,
            "order_response_rate": figures.order_rate,
        },
        "away": away_payload(panel.away),
        "orders": [
            {
                "number": order.number,
                "title": order.title,
                "status": order.status,
                "price": f"{order.price:.2f}",
                "created_at": iso_timestamp(order.created_at),
            }
            for order in panel.orders
        ],
    }
