"""Reads about attachments, with the access rule: the participants of the conversation (and
admins) see a sent file; an upload not sent yet is its uploader's alone. Anyone else gets 404."""

from inbox.models import Membership
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
    attachment = Attachment.objects.filter(pk=attachment_id).first() if 0 < attachment_id < 2**63 else None
    if attachment is None or not user.is_authenticated:
        raise NotFound("File not found.")
    if attachment.status in SENT:
        if (
            user.is_staff
            or Membership.objects.filter(conversation_id=attachment.conversation_id, user=user).exists()
        ):
            return attachment
    elif attachment.uploader_id == user.pk:
        return attachment
    raise NotFound("File not found.")
