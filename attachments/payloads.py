from django.urls import reverse

from .models import Attachment


def attachment_payload(attachment: Attachment) -> dict:
    """A file as participants see it. `download_url` answers with the file (or a redirect to a
    short-lived signed URL); for an archived file, it starts the restore and says when."""
    return {
        "id": attachment.pk,
        "name": attachment.name,
        "size": attachment.size,
        "content_type": attachment.content_type,
        "status": attachment.status,
        "download_url": reverse("api-v1:download_attachment", args=[attachment.pk]),
        "thumbnail_url": reverse("api-v1:attachment_thumbnail", args=[attachment.pk])
        if attachment.thumbnail_key
        else None,
    }
