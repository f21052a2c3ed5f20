"""Every write the inbox makes. One transaction per service; events for open tabs are appended
inside it and pushed after commit (inbox.events)."""

from .filing import (
    FILING_ACTIONS,
    block_requirements,
    block_user,
    create_label,
    delete_label,
    file_conversations,
    follow_up_label,
    unblock_user,
    update_label,
)
from .messaging import (
    EDIT_WINDOW,
    announce_typing,
    delete_message,
    edit_message,
    ensure_can_send,
    ensure_not_blocked,
    get_or_create_conversation,
    mark_read,
    mark_unread,
    prune_event_log,
    save_draft,
    send_message,
    start_conversation,
    validate_message_body,
)
from .translation import TranslatedMessage, translate_message

__all__ = [
    "EDIT_WINDOW",
    "FILING_ACTIONS",
    "TranslatedMessage",
    "announce_typing",
    "block_requirements",
    "block_user",
    "create_label",
    "delete_label",
    "delete_message",
    "edit_message",
    "ensure_can_send",
    "ensure_not_blocked",
    "file_conversations",
    "follow_up_label",
    "get_or_create_conversation",
    "mark_read",
    "mark_unread",
    "prune_event_log",
    "save_draft",
    "send_message",
    "start_conversation",
    "translate_message",
    "unblock_user",
    "update_label",
    "validate_message_body",
]
