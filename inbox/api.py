from datetime import datetime
from uuid import UUID

from django.conf import settings
from ninja import Field, Query, Router, Schema, Status

from . import selectors, services
from .payloads import conversation_payload, message_payload

router = Router(tags=["inbox"])

BODY_LIMIT = settings.MESSAGE_MAX_LENGTH


class UserOut(Schema):
    id: int
    username: str
    display_name: str
    avatar_initials: str
    is_seller: bool
    timezone: str


class MessageOut(Schema):
    id: int
    conversation_id: int
    sender: str = Field(description="Username of the author")
    body: str
    status: str = Field(description="visible, held or rejected")
    client_id: UUID
    created_at: datetime
    edited_at: datetime | None


class ConversationOut(Schema):
    id: int
    other_user: UserOut
    last_message: MessageOut | None
    last_message_at: datetime | None
    unread_count: int
    last_read_message_id: int | None
    other_last_read_message_id: int | None = Field(description="How far the other person has read")


class ConversationPage(Schema):
    items: list[ConversationOut]
    next_cursor: str | None


class MessagePage(Schema):
    items: list[MessageOut]
    next_cursor: str | None


class EventPage(Schema):
    items: list[dict]
    next_cursor: int | None = Field(description="Pass as `since` to continue; null when caught up")


class StartConversationIn(Schema):
    recipient: str = Field(max_length=150, description="Username of the person to write to")
    body: str = Field(description=f"1 to {BODY_LIMIT} characters")
    client_id: UUID | None = None


class SendMessageIn(Schema):
    body: str = Field(description=f"1 to {BODY_LIMIT} characters")
    client_id: UUID | None = Field(
        None, description="Chosen by the client; a retry with the same id is a no-op"
    )


class ReadIn(Schema):
    up_to_message_id: int | None = None


class PageQuery(Schema):
    cursor: str | None = Field(None, max_length=200)
    limit: int | None = None


class EventsQuery(Schema):
    since: int = 0
    limit: int | None = None


def _conversation_out(membership) -> dict:
    return conversation_payload(
        membership, other_last_read_message_id=selectors.other_last_read_message_id(membership=membership)
    )


@router.get("/conversations", response=ConversationPage)
def list_conversations(request, query: Query[PageQuery]):
    """The caller's conversations, most recent first."""
    page = selectors.inbox_page(user=request.user, cursor=query.cursor, limit=query.limit)
    items = [
        conversation_payload(m, other_last_read_message_id=m.other_last_read_message_id) for m in page.items
    ]
    return {"items": items, "next_cursor": page.next_cursor}


@router.post("/conversations", response={201: ConversationOut, 200: ConversationOut})
def start_conversation(request, payload: StartConversationIn):
    """Write to a user: opens the conversation with them (or reuses it) and sends `body`."""
    conversation, _message, created = services.start_conversation(
        sender=request.user,
        recipient_username=payload.recipient,
        body=payload.body,
        client_id=payload.client_id,
    )
    membership = selectors.conversation_for_user(
        user=request.user, conversation_id=conversation.pk, details=True
    )
    return Status(201 if created else 200, _conversation_out(membership))


@router.get("/conversations/{int:conversation_id}", response=ConversationOut)
def get_conversation(request, conversation_id: int):
    membership = selectors.conversation_for_user(
        user=request.user, conversation_id=conversation_id, details=True
    )
    return _conversation_out(membership)


@router.get("/conversations/{int:conversation_id}/messages", response=MessagePage)
def list_messages(request, conversation_id: int, query: Query[PageQuery]):
    """Messages, newest first; `next_cursor` pages further back."""
    membership = selectors.conversation_for_user(user=request.user, conversation_id=conversation_id)
    page = selectors.thread_page(membership=membership, cursor=query.cursor, limit=query.limit)
    return {"items": [message_payload(m) for m in page.items], "next_cursor": page.next_cursor}


@router.post("/conversations/{int:conversation_id}/messages", response={201: MessageOut, 200: MessageOut})
def send_message(request, conversation_id: int, payload: SendMessageIn):
    """Send a message. 201 when stored now, 200 when `client_id` was already sent (the original)."""
    membership = selectors.conversation_for_user(user=request.user, conversation_id=conversation_id)
    message, created = services.send_message(
        sender=request.user,
        conversation=membership.conversation,
        body=payload.body,
        client_id=payload.client_id,
    )
    return Status(201 if created else 200, message_payload(message))


@router.post("/conversations/{int:conversation_id}/read", response=ConversationOut)
def mark_read(request, conversation_id: int, payload: ReadIn | None = None):
    """Mark read up to a message (default: all of it)."""
    membership = selectors.conversation_for_user(
        user=request.user, conversation_id=conversation_id, details=True
    )
    updated = services.mark_read(
        user=request.user,
        conversation=membership.conversation,
        up_to_message_id=payload.up_to_message_id if payload else None,
    )
    membership.unread_count, membership.last_read_message_id = (
        updated.unread_count,
        updated.last_read_message_id,
    )
    return _conversation_out(membership)


@router.post("/conversations/{int:conversation_id}/typing", response={204: None})
def typing(request, conversation_id: int):
    """Tell the other person you are typing (live only; send every few seconds while typing)."""
    membership = selectors.conversation_for_user(user=request.user, conversation_id=conversation_id)
    services.announce_typing(user=request.user, conversation=membership.conversation)
    return Status(204, None)


@router.get("/events", response=EventPage)
def list_events(request, query: Query[EventsQuery]):
    """The caller's events after cursor `since`, oldest first: what a reconnecting client missed."""
    page = selectors.events_since(user=request.user, since=query.since, limit=query.limit)
    return {"items": [event.as_dict() for event in page.items], "next_cursor": page.next_cursor}
