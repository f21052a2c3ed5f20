from django.conf import settings
from django.db import models
from django.utils import timezone

from inbox.models import Message


class ModerationDecision(models.Model):
    """Audit log: who approved or rejected a held message, and when."""

    class Decision(models.TextChoices):
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    message = models.ForeignKey(
        "inbox.Message", on_delete=models.CASCADE, related_name="moderation_decisions"
    )
    decision = models.CharField(max_length=10, choices=Decision.choices)
    moderator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.get_decision_display()} message {self.message_id}"


class Report(models.Model):
    """A user reports a message or a whole conversation to the moderators."""

    class Reason(models.TextChoices):
        SPAM = "spam", "Spam"
        INAPPROPRIATE = "inappropriate", "Inappropriate"
        OFF_PLATFORM = "off_platform", "Asked to talk or pay outside the platform"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reports_made"
    )
    reported_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reports_received"
    )
    conversation = models.ForeignKey("inbox.Conversation", on_delete=models.CASCADE, related_name="reports")
    message = models.ForeignKey(
        "inbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    reason = models.CharField(max_length=20, choices=Reason.choices)
    note = models.TextField(max_length=2000, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "-created_at"], name="report_queue")]

    def __str__(self):
        return f"{self.get_reason_display()} report on conversation {self.conversation_id}"


class Restriction(models.Model):
    """A step of the messaging ladder: a notice (limit reached), a warning, a suspension
    (temporary with `ends_at`, permanent without). Lifting one makes it count no more."""

    class Kind(models.TextChoices):
        NOTICE = "notice", "Limit notice"
        WARNING = "warning", "Warning"
        SUSPENSION = "suspension", "Suspension"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="restrictions")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    reason = models.CharField(max_length=300)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty on a suspension: permanent")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Empty when the ladder applied it",
    )  # fmt: skip
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["user", "-starts_at"], name="restrictions_of_user")]

    def __str__(self):
        return f"{self.get_kind_display()} for {self.user}"

    def is_in_force(self, now=None) -> bool:
        now = now or timezone.now()
        return (
            self.lifted_at is None and self.starts_at <= now and (self.ends_at is None or self.ends_at > now)
        )


class HeldMessage(Message):
    """Messages waiting for a moderator: the admin's review queue (no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = "held message"
        verbose_name_plural = "held messages (review queue)"
