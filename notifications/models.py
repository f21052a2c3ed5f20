from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Kind(models.TextChoices):
    NEW_MESSAGE = "new_message", "New message (while you are away)"
    REQUEST_RECEIVED = "request_received", "Request received"
    OFFER_RECEIVED = "offer_received", "Custom offer received"
    OFFER_ACCEPTED = "offer_accepted", "Offer accepted"
    OFFER_DECLINED = "offer_declined", "Offer declined"
    OFFER_EXPIRED = "offer_expired", "Offer expired"
    ORDER_CREATED = "order_created", "Order created"
    REQUIREMENTS_SUBMITTED = "requirements_submitted", "Requirements submitted"
    ORDER_UPDATED = "order_updated", "Order updated"
    ORDER_DELIVERED = "order_delivered", "Order delivered"
    REVISION_REQUESTED = "revision_requested", "Revision requested"
    ORDER_COMPLETED = "order_completed", "Order completed"
    REVIEW_RECEIVED = "review_received", "Review received"
    MESSAGE_HELD = "message_held", "Your message is under review"
    MESSAGE_REJECTED = "message_rejected", "Your message was not delivered"
    MESSAGE_APPROVED = "message_approved", "Your message was approved"
    WARNING = "warning", "Warning"
    SUSPENSION = "suspension", "Suspension"
    FILE_RESTORED = "file_restored", "Archived file ready to download"


class Channel(models.TextChoices):
    IN_APP = "in_app", "Real-time (the bell)"
    EMAIL = "email", "Email"
    PUSH = "push", "Mobile and browser push"


# What a user gets before changing anything: everything in the bell and by push; by email
# everything but moderation notices about one's own messages (the page already says it).
DEFAULT_OFF = {(Kind.MESSAGE_HELD, Channel.EMAIL), (Kind.MESSAGE_APPROVED, Channel.EMAIL)}


class Notification(models.Model):
    """One thing a user is told about, with a link to where to act on it. Stored once per
    (recipient, dedupe_key): whatever creates it twice creates it once."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    title = models.CharField(max_length=200)
    body = models.CharField(max_length=300, blank=True)
    url = models.CharField(max_length=500, help_text="Where to act on it (a path on this site)")
    dedupe_key = models.CharField(max_length=200)
    # Whether it shows in the bell: the recipient's in-app preference when it was created.
    in_app = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    # Set once the channels were served; the sweep re-queues what stays unset.
    fanned_out_at = models.DateTimeField(null=True, blank=True)
    # For new-message notifications: the message, so a digest skips what was read meanwhile.
    message = models.ForeignKey(
        "inbox.Message", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recipient", "dedupe_key"], name="one_notification_per_key"),
        ]
        indexes = [
            models.Index(fields=["recipient", "-id"], name="notification_bell"),
            models.Index(
                fields=["recipient"],
                condition=Q(read_at__isnull=True, in_app=True),
                name="notification_unread",
            ),
            models.Index(
                fields=["created_at"], condition=Q(fanned_out_at__isnull=True), name="notification_pending"
            ),
        ]

    def __str__(self):
        return f"{self.kind} for {self.recipient_id}: {self.title}"


class Preference(models.Model):
    """A user's choice for one kind on one channel; no row means the default."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    enabled = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "channel"], name="one_preference_per_kind_channel"
            ),
        ]

    def __str__(self):
        return f"{self.user_id} {self.kind} {self.channel}: {'on' if self.enabled else 'off'}"


class Delivery(models.Model):
    """A notification sent on one channel. The row is claimed before sending, so a task run
    twice, or restarted after a crash, never sends the same thing twice."""

    class Status(models.TextChoices):
        CLAIMED = "claimed", "Being sent"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.CLAIMED)
    detail = models.CharField(max_length=300, blank=True)
    # The fan-out run that inserted the row: how a run tells its claims from another run's.
    claim = models.UUIDField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["notification", "channel"], name="one_delivery_per_channel"),
        ]

    def __str__(self):
        return f"{self.channel} of {self.notification_id}: {self.status}"


class PushSubscription(models.Model):
    """A browser that subscribed to Web Push for this user (the Push API's subscription)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions"
    )
    endpoint = models.URLField(max_length=500, unique=True)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"push for {self.user_id}"
