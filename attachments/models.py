from django.conf import settings
from django.db import models
from django.utils import timezone


class Attachment(models.Model):
    """A file sent in a conversation. Uploaded first (straight to the bucket, or streamed to the
    local folder), checked (size, type sniffed from the content), then attached to a message.
    Archived when nobody opened it for a long time, restored on demand, purged when old."""

    class Status(models.TextChoices):
        UPLOADING = "uploading", "Uploading"
        READY = "ready", "Uploaded, not sent yet"
        ATTACHED = "attached", "Sent"
        ARCHIVED = "archived", "Archived"
        RESTORING = "restoring", "Being restored"
        EXPIRED = "expired", "Expired"

    uploader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(
        "inbox.Conversation", on_delete=models.CASCADE, related_name="attachments"
    )
    message = models.ForeignKey(
        "inbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="attachments"
    )
    name = models.CharField(max_length=255, help_text="As the user named it; shown, never used as a path")
    key = models.CharField(max_length=400, unique=True, help_text="Where the bytes are stored")
    size = models.BigIntegerField(default=0)
    content_type = models.CharField(max_length=120, blank=True, help_text="Sniffed from the content")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UPLOADING)
    upload_id = models.CharField(max_length=300, blank=True, help_text="The bucket's multipart upload")
    thumbnail_key = models.CharField(max_length=400, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_accessed_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    restore_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    restore_ready_at = models.DateTimeField(null=True, blank=True, help_text="When the restore should end")
    restored_until = models.DateTimeField(null=True, blank=True, help_text="The restored copy lasts until")
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "last_accessed_at"], name="attachment_idle"),
            models.Index(fields=["created_at"], name="attachment_age"),
        ]

    def __str__(self):
        return f"{self.name} ({self.get_status_display()})"

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")
