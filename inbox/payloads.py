"""The JSON shapes of users, messages and conversations, shared by the API and the event log."""

from django.core.serializers.json import DjangoJSONEncoder

from .models import Membership, Message

_json_encoder = DjangoJSONEncoder()


def _iso(value):
    """The same form the API's responses use (ISO 8601, milliseconds, Z for UTC)."""
    return _json_encoder.default(value) if value is not None else None


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


def message_payload(message: Message) -> dict:
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "sender": message.sender.username,
        "body": message.body,
        "status": message.status,
        "client_id": str(message.client_id),
        "created_at": _iso(message.created_at),
        "edited_at": _iso(message.edited_at),
    }


def conversation_payload(membership: Membership, *, other_last_read_message_id: int | None = None) -> dict:
    last_message = membership.conversation.last_message
    return {
        "id": membership.conversation_id,
        "other_user": user_summary(membership.other_user),
        "last_message": message_payload(last_message) if last_message else None,
        "last_message_at": _iso(membership.last_message_at),
        "unread_count": membership.unread_count,
        "last_read_message_id": membership.last_read_message_id,
        "other_last_read_message_id": other_last_read_message_id,
    }
