from django.db import models
from django.utils import timezone


class Entry(models.Model):
    """Work that must happen after a transaction commits: a Celery task to queue, or messages to
    send to channel-layer groups (events for open sockets, sockets to close). Written in the
    same transaction as the data it is about, deleted once published (outbox.services)."""

    class Kind(models.TextChoices):
        TASK = "task", "Celery task"
        GROUP_SEND = "group_send", "Channel-layer messages"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    # Not before: a claimed entry is leased until then; a failed one waits for its next try.
    available_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "entries"
        indexes = [models.Index(fields=["available_at", "id"], name="outbox_due")]

    def __str__(self):
        return f"{self.kind} #{self.pk}"
