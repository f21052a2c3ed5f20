from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class Conversation(models.Model):
    """One conversation per pair of users; `user_low` always holds the smaller id."""

    user_low = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    user_high = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_message = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_message_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_low", "user_high"], name="one_conversation_per_pair"),
            models.CheckConstraint(
                condition=Q(user_low__lt=F("user_high")), name="conversation_pair_ordered"
            ),
        ]

    def __str__(self):
        return f"Conversation {self.pk}"


class Membership(models.Model):
    """A user's own state in a conversation: what they have read and what waits for them."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    other_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    unread_count = models.PositiveIntegerField(default=0)
    last_read_message_id = models.BigIntegerField(null=True, blank=True)
    # Copied from the conversation so that a user's inbox is one index range scan.
    last_message_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="one_membership_per_user"),
        ]
        indexes = [models.Index(fields=["user", "-last_message_at", "-id"], name="inbox_order")]

    def __str__(self):
        return f"{self.user} in {self.conversation_id}"


class Message(models.Model):
    class Status(models.TextChoices):
        VISIBLE = "visible", "Visible"
        HELD = "held", "Held for review"
        REJECTED = "rejected", "Rejected"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sent_messages"
    )
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.VISIBLE)
    client_id = models.UUIDField(
        help_text="Chosen by the client; a retry with the same id is the same message"
    )
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sender", "client_id"], name="idempotent_send"),
        ]
        indexes = [models.Index(fields=["conversation", "-id"], name="thread_order")]

    def __str__(self):
        return f"Message {self.pk} by {self.sender_id}"


class EventLogHead(models.Model):
    """The last cursor handed out for a user. Incremented inside the writing transaction, so a
    user's cursors grow in commit order (the row lock serialises concurrent writers)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True)
    last_cursor = models.BigIntegerField(default=0)
    pruned_through = models.BigIntegerField(default=0, help_text="Events up to this cursor were deleted")

    def __str__(self):
        return f"event log of {self.user_id} at {self.last_cursor}"


class Event(models.Model):
    """One entry of a user's event log: what their open tabs were (or should have been) told."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="events")
    cursor = models.BigIntegerField()
    type = models.CharField(max_length=40)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "cursor"], name="one_event_per_cursor")]

    def __str__(self):
        return f"{self.type} #{self.cursor} for {self.user_id}"

    def as_dict(self) -> dict:
        return {"type": self.type, "cursor": self.cursor, **self.payload}
