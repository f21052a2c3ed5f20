"""Reads about attachments, with the access rule: the participants of the conversation (and
admins) see a sent file; an upload not sent yet is its uploader's alone. Anyone else gets 404."""

from inbox.models import Membership, Message
from marketplace.errors import NotFound

from .models import Attachment

SENT = (
    Attachment.Status.ATTACHED,
    Attachment.Status.ARCHIVED,
    Attachment.Status.RESTORING,
    Attachment.Status.EXPIRED,
)


def attachment_for_user(*, user, attachment_id) -> Attachment:
    try:
        attachment_id = int(attachment_id)
    except (TypeError, ValueError):
        raise NotFound("File not found.") from None
    attachment = (
        Attachment.objects.select_related("message").filter(pk=attachment_id).first()
        if 0 < attachment_id < 2**63
        else None
    )
    if attachment is None or not user.is_authenticated:
        raise NotFound("File not found.")
    if attachment.status in SENT:
        message = attachment.message
        # A participant sees the file as they see its message: not once deleted, and a held or
        # refused message (with its files) is its sender's alone until a moderator approves it.
        shown = (
            message is not None
            and not message.is_deleted
            and (message.status == Message.Status.VISIBLE or message.sender_id == user.pk)
        )
        if user.is_staff or (
            shown
            and Membership.objects.filter(conversation_id=attachment.conversation_id, user=user).exists()
        ):
            return attachment
    elif attachment.uploader_id == user.pk:
        return attachment
    raise NotFound("File not found.")
