from datetime import date, datetime
from typing import Annotated
from uuid import UUID

from django.conf import settings
from ninja import Field, Query, Router, Schema, Status

from attachments.api import AttachmentOut
from marketplace.accounts.services import READING_LANGUAGES
from marketplace.api_inputs import NO_NUL, NOT_BLANK, SPACE, BodyIn, JsonInt, declared

from . import selectors, services
from .payloads import conversation_payload, label_payload, message_payload, panel_payload
from .services.filing import MAX_CONVERSATIONS_PER_ACTION, MAX_LABEL_NAME

router = Router(tags=["inbox"])

BODY_LIMIT = settings.MESSAGE_MAX_LENGTH
# A message's text as validate_message_body takes it (empty_body, body_too_long, invalid_body).
MESSAGE_TEXT = {"minLength": 1, "maxLength": BODY_LIMIT, "pattern": NOT_BLANK}


class UserOut(Schema):
    id: int
    username: str
    display_name: str
    avatar_initials: str
    is_seller: bool
    timezone: str


class QuoteOut(Schema):
    id: int
    sender: str
    excerpt: str = Field(description="The start of the quoted text (empty when it was deleted)")
    deleted: bool


class OrderTagOut(Schema):
    id: int
    number: str


class MessageOut(Schema):
    id: int
    conversation_id: int
    sender: str = Field(description="Username of the author")
    body: str = Field(description="Empty when the message was deleted")
    status: str = Field(description="visible, held (waiting for a moderator) or rejected")
    moderation_reason: str | None = Field(
        description="Why it is held or rejected (only its sender sees these)"
    )
    client_id: UUID
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    reply_to: QuoteOut | None = Field(description="The message this one answers")
    kind: str = Field(description="text, or a card: system (an order update), offer, request, call")
    order: OrderTagOut | None = Field(description="The order this message is about")
    card: dict | None = Field(description="What an offer, request or call card shows (kind-specific)")
    is_automatic: bool = Field(description="Sent automatically on the sender's behalf (an auto-reply)")
    attachments: list[AttachmentOut] = Field(description="The files it carries")


class ConversationOut(Schema):
    id: int
    other_user: UserOut
    last_message: MessageOut | None
    last_message_at: datetime | None
    unread_count: int
    last_read_message_id: int | None
    other_last_read_message_id: int | None = Field(description="How far the other person has read")
    needs_reply: bool = Field(description="The last word is the other person's")
    starred: bool
    archived: bool
    spam: bool = Field(description="You reported it as spam")
    deleted: bool = Field(description="You deleted it from your inbox (the other person keeps theirs)")
    labels: list[int] = Field(description="Ids of the labels you applied")
    has_custom_offer: bool
    has_request: bool
    draft: str = Field(description="What you typed and did not send yet")


class LabelOut(Schema):
    id: int
    name: str
    color: str
    shared: bool = Field(description="A label everyone has (Follow-up); it cannot be changed")


# As the filing service takes them: invalid_label, invalid_color (exactly "#rrggbb").
LabelName = Annotated[
    str, Field(max_length=4000, json_schema_extra={"maxLength": MAX_LABEL_NAME, "pattern": NOT_BLANK})
]
LabelColor = Annotated[
    str,
    Field(max_length=20, json_schema_extra={"pattern": "^#[0-9a-fA-F]{6}", "minLength": 7, "maxLength": 7}),
]


class LabelIn(BodyIn):
    name: LabelName
    color: LabelColor | None = None


class LabelPatch(BodyIn):
    name: LabelName | None = None
    color: LabelColor | None = None


class FilterCounts(Schema):
    all: int
    unread: int
    starred: int
    needs_reply: int
    archived: int
    spam: int
    custom_offers: int
    requests: int
    follow_up: int
    labels: dict[int, int] = Field(description="Label id -> conversations carrying it")


class ActionIn(BodyIn):
    action: str = declared(description=", ".join(services.FILING_ACTIONS), enum=list(services.FILING_ACTIONS))
    conversation_ids: list[JsonInt] = declared(
        description=f"One or more of your conversations (at most {MAX_CONVERSATIONS_PER_ACTION})",
        minItems=1,
        maxItems=MAX_CONVERSATIONS_PER_ACTION,
    )
    label_id: JsonInt | None = Field(None, description="Required by add_label and remove_label")

    # label_required: the label actions name their label.
    model_config = {
        "json_schema_extra": {
            "anyOf": [
                {"properties": {"action": {"not": {"enum": ["add_label", "remove_label"]}}}},
                {"properties": {"label_id": {"type": "integer"}}, "required": ["label_id"]},
            ]
        }
    }


class DraftIn(BodyIn):
    text: str = Field(max_length=100_000, json_schema_extra={"maxLength": BODY_LIMIT, "pattern": NO_NUL})


class EditIn(BodyIn):
    body: str = declared(description=f"1 to {BODY_LIMIT} characters, not only whitespace", **MESSAGE_TEXT)


class BlockIn(BodyIn):
    username: str = Field(max_length=150, pattern=NO_NUL)


class ConversationPage(Schema):
    items: list[ConversationOut]
    next_cursor: str | None


class MessagePage(Schema):
    items: list[MessageOut]
    next_cursor: str | None


class EventPage(Schema):
    items: list[dict]
    next_cursor: int | None = Field(description="Pass as `since` to continue; null when caught up")


class StartConversationIn(BodyIn):
    recipient: str = Field(max_length=150, description="Username of the person to write to")
    body: str = declared(description=f"1 to {BODY_LIMIT} characters, not only whitespace", **MESSAGE_TEXT)
    client_id: UUID | None = None


class SendMessageIn(BodyIn):
    body: str = declared(
        description=f"1 to {BODY_LIMIT} characters, not only whitespace; or empty with attachments",
        maxLength=BODY_LIMIT,
        pattern=NO_NUL,
    )
    attachments: list[JsonInt] = Field(
        default_factory=list,
        max_length=50,
        description="Ids of your uploads (ready) the message carries",
        json_schema_extra={"maxItems": settings.ATTACHMENTS_PER_MESSAGE},  # too_many_attachments
    )
    client_id: UUID | None = Field(
        None, description="Chosen by the client; a retry with the same id is a no-op"
    )
    reply_to: JsonInt | None = Field(None, description="Id of a message of this conversation it answers")

    # A text, or files alone (send_message: an empty body needs attachments).
    model_config = {
        "json_schema_extra": {
            "anyOf": [
                {"properties": {"body": {"pattern": NOT_BLANK}}},
                {
                    "properties": {"body": {"maxLength": 0}, "attachments": {"minItems": 1}},
                    "required": ["attachments"],
                },
            ]
        }
    }


class ReadIn(BodyIn):
    up_to_message_id: JsonInt | None = None


# Cursors are what the server handed out (invalid_cursor otherwise), limits within their range
# (invalid_limit): the selectors check both.
Base64Cursor = Annotated[str, Field(max_length=200, json_schema_extra={"pattern": selectors.CURSOR_PATTERN})]
ThreadCursor = Annotated[
    str, Field(max_length=200, json_schema_extra={"pattern": selectors.THREAD_CURSOR_PATTERN})
]
NEXT_PAGE = "`next_cursor` of the previous page"


def _limit(maximum: int):
    return Annotated[int, declared(minimum=1, maximum=maximum)] | None


class ConversationQuery(Schema):
    cursor: Base64Cursor | None = Field(None, description=NEXT_PAGE)
    limit: _limit(selectors.CONVERSATIONS_PAGE_MAX) = Field(
        None, description=f"1 to {selectors.CONVERSATIONS_PAGE_MAX}, default 30"
    )
    filter: str = declared("all", description=", ".join(selectors.FILTERS), enum=list(selectors.FILTERS))
    label: int | None = Field(None, description="A label id: the conversations carrying it")
    q: (
        Annotated[str, Field(max_length=10_000, json_schema_extra={"maxLength": selectors.MAX_NAME_QUERY})]
        | None
    ) = Field(None, description="Part of the other person's name or username")


class ThreadQuery(Schema):
    cursor: ThreadCursor | None = Field(None, description=NEXT_PAGE)
    limit: _limit(selectors.MESSAGES_PAGE_MAX) = Field(
        None, description=f"1 to {selectors.MESSAGES_PAGE_MAX}, default 50"
    )


class EventsQuery(Schema):
    since: int = declared(0, description="0, or the `next_cursor` of an earlier page", minimum=0)
    limit: _limit(settings.EVENTS_PAGE_MAX) = Field(
        None, description=f"1 to {settings.EVENTS_PAGE_MAX}, default {settings.EVENTS_PAGE_MAX}"
    )


def _conversation_out(membership) -> dict:
    selectors.attach_label_ids([membership])
    return conversation_payload(
        membership,
        label_ids=membership.label_ids,
        other_last_read_message_id=selectors.other_last_read_message_id(membership=membership),
    )


@router.get("/conversations", response=ConversationPage)
def list_conversations(request, query: Query[ConversationQuery]):
    """The caller's conversations in a filter (default: all, i.e. not archived, deleted or spam),
    most recent first. `q` narrows to the other person's name; with the default filter it also
    finds conversations you deleted."""
    page = selectors.inbox_page(
        user=request.user,
        filter_name=query.filter,
        label_id=query.label,
        query=query.q,
        cursor=query.cursor,
        limit=query.limit,
    )
    items = [
        conversation_payload(
            m, label_ids=m.label_ids, other_last_read_message_id=m.other_last_read_message_id
        )
        for m in page.items
    ]
    return {"items": items, "next_cursor": page.next_cursor}


@router.get("/conversations/counts", response=FilterCounts)
def conversation_counts(request):
    """How many conversations each filter and label holds (Unread: how many are unread)."""
    return selectors.filter_counts(user=request.user)


@router.post("/conversations/actions", response=list[ConversationOut])
def file_conversations(request, payload: ActionIn):
    """Star, archive, delete from your inbox, report spam, mark read or unread, apply or remove a
    label: on one or many of your conversations at once, all or none."""
    label = (
        selectors.label_for_user(user=request.user, label_id=payload.label_id)
        if payload.label_id is not None
        else None
    )
    memberships = services.file_conversations(
        user=request.user, conversation_ids=payload.conversation_ids, action=payload.action, label=label
    )
    return [
        _conversation_out(
            selectors.conversation_for_user(
                user=request.user, conversation_id=m.conversation_id, details=True
            )
        )
        for m in memberships
    ]


@router.post("/conversations", response={201: ConversationOut, 200: ConversationOut})
def start_conversation(request, payload: StartConversationIn):
    """Write to a user: opens the conversation with them (or reuses it) and sends `body`."""
    conversation, _message, created = services.start_conversation(
        sender=request.user,
        recipient_username=payload.recipient,
        body=payload.body,
        client_id=payload.client_id,
        rate_limited=True,
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


class TopBuyerOut(Schema):
    is_top_buyer: bool
    completed_orders: int
    spent: str


class ResponseFiguresOut(Schema):
    average_response_seconds: int | None = Field(description="Mean time to answer, last 60 days")
    inbox_response_rate: int | None = Field(
        description="% of first messages answered within 24 hours, last 60 days; null: none yet"
    )
    order_response_rate: int | None = Field(description="The same for messages tied to an open order")


class PanelOrderOut(Schema):
    number: str
    title: str
    status: str
    price: str
    created_at: datetime


class AwayOut(Schema):
    starts_on: date = Field(description="First day away, in the seller's calendar")
    ends_on: date = Field(description="Last day away (inclusive)")
    message: str = Field(description="What the seller wants buyers to know")


class PanelOut(Schema):
    user: UserOut
    online: bool
    local_time: str = Field(description="Their local time now, ISO 8601 with offset")
    languages: list[str]
    member_since: datetime
    top_buyer: TopBuyerOut | None = Field(description="Buyers only")
    response: ResponseFiguresOut | None = Field(description="Sellers only")
    away: AwayOut | None = Field(description="Sellers only: away today (Set availability); null otherwise")
    orders: list[PanelOrderOut] = Field(description="The orders between you two, newest first (10)")


@router.get("/conversations/{int:conversation_id}/panel", response=PanelOut)
def get_panel(request, conversation_id: int):
    """About the other person: presence, local time, languages, Top buyer standing (buyers),
    response figures (sellers) and your order history together."""
    membership = selectors.conversation_for_user(
        user=request.user, conversation_id=conversation_id, details=True
    )
    return panel_payload(selectors.other_person_panel(user=request.user, other=membership.other_user))


@router.get("/conversations/{int:conversation_id}/messages", response=MessagePage)
def list_messages(request, conversation_id: int, query: Query[ThreadQuery]):
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
        reply_to_id=payload.reply_to,
        rate_limited=True,
        attachment_ids=payload.attachments,
    )
    return Status(201 if created else 200, message_payload(message))


@router.patch("/messages/{int:message_id}", response=MessageOut)
def edit_message(request, message_id: int, payload: EditIn):
    """Change your message's text, within 15 minutes of sending it."""
    message = selectors.message_for_user(user=request.user, message_id=message_id)
    return message_payload(services.edit_message(user=request.user, message=message, body=payload.body))


@router.delete("/messages/{int:message_id}", response=MessageOut)
def delete_message(request, message_id: int):
    """Delete your message, within 15 minutes of sending it: a placeholder stays in its place."""
    message = selectors.message_for_user(user=request.user, message_id=message_id)
    return message_payload(services.delete_message(user=request.user, message=message))


@router.put("/conversations/{int:conversation_id}/draft", response=ConversationOut)
def save_draft(request, conversation_id: int, payload: DraftIn):
    """Keep unsent text for this conversation; it comes back on your other devices."""
    membership = selectors.conversation_for_user(user=request.user, conversation_id=conversation_id)
    services.save_draft(user=request.user, conversation=membership.conversation, text=payload.text)
    return _conversation_out(
        selectors.conversation_for_user(user=request.user, conversation_id=conversation_id, details=True)
    )


@router.get("/labels", response=list[LabelOut])
def list_labels(request):
    """Your labels and the ones everyone has (Follow-up)."""
    services.follow_up_label()
    return [label_payload(label) for label in selectors.labels_for_user(user=request.user)]


@router.post("/labels", response={201: LabelOut})
def create_label(request, payload: LabelIn):
    label = services.create_label(user=request.user, name=payload.name, color=payload.color)
    return Status(201, label_payload(label))


@router.patch("/labels/{int:label_id}", response=LabelOut)
def update_label(request, label_id: int, payload: LabelPatch):
    """Rename or recolour one of your labels."""
    label = selectors.label_for_user(user=request.user, label_id=label_id)
    label = services.update_label(user=request.user, label=label, name=payload.name, color=payload.color)
    return label_payload(label)


@router.delete("/labels/{int:label_id}", response={204: None})
def delete_label(request, label_id: int):
    label = selectors.label_for_user(user=request.user, label_id=label_id)
    services.delete_label(user=request.user, label=label)
    return Status(204, None)


@router.post("/blocks", response={204: None})
def block_user(request, payload: BlockIn):
    """Block someone you have a conversation with: their messages to you are refused."""
    other = selectors.correspondent(user=request.user, username=payload.username)
    services.block_user(blocker=request.user, blocked=other)
    return Status(204, None)


@router.delete("/blocks/{username}", response={204: None})
def unblock_user(request, username: str):
    other = selectors.correspondent(user=request.user, username=username)
    services.unblock_user(blocker=request.user, blocked=other)
    return Status(204, None)


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


# --- search ---------------------------------------------------------------------------------
# Imported here so this section stays one self-contained block at the end of the file.
from .payloads import user_summary  # noqa: E402
from .search import MAX_QUERY_LENGTH, SEARCH_PAGE_MAX, search_messages  # noqa: E402


class SearchQueryIn(Schema):
    q: str = Field(
        max_length=10_000,
        description=f"Words to find (1 to {MAX_QUERY_LENGTH} characters)",
        # empty_query, query_too_long: NULs and the spaces around are dropped, something must be left
        json_schema_extra={"maxLength": MAX_QUERY_LENGTH, "pattern": rf"[^{SPACE}\x00]"},
    )
    cursor: Base64Cursor | None = Field(None, description=NEXT_PAGE)
    limit: _limit(SEARCH_PAGE_MAX) = Field(None, description=f"1 to {SEARCH_PAGE_MAX}, default 20")


class SnippetPartOut(Schema):
    text: str
    match: bool = Field(description="This part matched the query (show it highlighted)")


class SearchHitOut(Schema):
    message: MessageOut
    conversation_id: int
    other_user: UserOut
    snippet: list[SnippetPartOut] = Field(description="Plain text around the first match, in parts")


class SearchPage(Schema):
    items: list[SearchHitOut]
    next_cursor: str | None


def search_hit_payload(hit) -> dict:
    return {
        "message": message_payload(hit.message),
        "conversation_id": hit.conversation_id,
        "other_user": user_summary(hit.other_user),
        "snippet": [{"text": part.text, "match": part.match} for part in hit.snippet],
    }


@router.get("/search", response=SearchPage)
def search(request, query: Query[SearchQueryIn]):
    """Your messages (both sides of your conversations) that contain the words of `q`, newest
    first. PostgreSQL reads `q` like a web search: `"exact phrase"`, `-without`, `or`."""
    page = search_messages(user=request.user, query=query.q, cursor=query.cursor, limit=query.limit)
    return {"items": [search_hit_payload(hit) for hit in page.items], "next_cursor": page.next_cursor}


# --- translation ----------------------------------------------------------------------------


class TranslationIn(BodyIn):
    target_language: Annotated[str, declared(enum=sorted(READING_LANGUAGES))] | None = Field(
        None, max_length=8, description="ISO 639-1 code; default: your reading language (PATCH /me)"
    )


class TranslationOut(Schema):
    message_id: int
    source_language: str = Field(description="Detected language of the message (ISO 639-1)")
    target_language: str
    text: str = Field(description="The message in target_language (the original when already in it)")
    backend: str | None = Field(description="apertium or libretranslate; null when nothing was translated")
    original: str = Field(description="The message as written")
    note: str = Field(description='e.g. "Already in English."; empty otherwise')


@router.post("/messages/{int:message_id}/translation", response=TranslationOut)
def translate_message(request, message_id: int, payload: TranslationIn | None = None):
    """A message you received, in your reading language (or `target_language`), cached per
    message and language. Refused for your own messages and deleted ones."""
    message = selectors.message_for_user(user=request.user, message_id=message_id)
    translation = services.translate_message(
        user=request.user,
        message=message,
        target_language=payload.target_language if payload else None,
    )
    return translation
