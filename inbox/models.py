from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone

MAX_ROW_ID = 2**63 - 1  # ids are 64-bit (BigAutoField): a larger one names no row


class Conversation(models.Model):
    """One conversation per pair of users; `user_low` always holds the smaller id."""

    user_low = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    user_high = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_message = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_message_at = models.DateTimeField(null=True, blank=True)
    # Set by the orders app while an order between the two is open: new messages are tagged with it.
    active_order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

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
    # How this user files the conversation. A new message brings it back from archived or
    # deleted; spam stays spam until the user says otherwise.
    starred_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Deleted from this user's inbox only")
    spam_at = models.DateTimeField(null=True, blank=True, help_text="Reported as spam by this user")
    labels = models.ManyToManyField(
        "Label", through="MembershipLabel", related_name="memberships", blank=True
    )
    # Set by the orders app when an offer or a request is made in this conversation.
    has_custom_offer = models.BooleanField(default=False)
    has_request = models.BooleanField(default=False)
    draft = models.TextField(blank=True)
    draft_updated_at = models.DateTimeField(null=True, blank=True)

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

    class Kind(models.TextChoices):
        TEXT = "text", "Message"
        SYSTEM = "system", "Order update"
        OFFER = "offer", "Custom offer"
        REQUEST = "request", "Request"
        CALL = "call", "Call"

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
    deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="Deleted by its sender; the text is kept"
    )
    reply_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TEXT)
    moderation_reason = models.CharField(
        max_length=500, blank=True, help_text="Told to the sender when held or rejected"
    )
    moderation_findings = models.JSONField(default=list, blank=True)
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages",
        help_text="The order this message is about; shown with the order's number",
    )  # fmt: skip
    card = models.JSONField(
        default=dict,
        blank=True,
        help_text="What an offer, request or call card shows, kept current by its app",
    )
    # Sent by the product on the user's behalf (an auto-reply): never an answer that counts.
    is_automatic = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sender", "client_id"], name="idempotent_send"),
            models.UniqueConstraint(
                fields=["conversation", "sender"],
                condition=models.Q(is_automatic=True),
                name="one_auto_reply_per_conversation",
            ),
        ]
        indexes = [models.Index(fields=["conversation", "-id"], name="thread_order")]

    def __str__(self):
        return f"Message {self.pk} by {self.sender_id}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class MessageRevision(models.Model):
    """A text a message had before an edit or a deletion: admins see every version (disputes)."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="revisions")
    body = models.TextField()
    replaced_at = models.DateTimeField(default=timezone.now)
    change = models.CharField(max_length=10, choices=[("edit", "Edited"), ("delete", "Deleted")])

    class Meta:
        ordering = ["replaced_at", "id"]

    def __str__(self):
        return f"{self.change} of message {self.message_id} at {self.replaced_at:%Y-%m-%d %H:%M}"


FOLLOW_UP_LABEL = "Follow-up"


class Label(models.Model):
    """A user's own label, or a label everyone has (user is null: Follow-up)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="labels"
    )
    name = models.CharField(max_length=40)
    color = models.CharField(max_length=7, default="#6b7280", help_text="#rrggbb")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("name"), "user", name="label_name_unique_per_user"),
            models.UniqueConstraint(
                Lower("name"), condition=Q(user__isnull=True), name="shared_label_name_unique"
            ),
        ]
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def is_shared(self) -> bool:
        return self.user_id is None


class MembershipLabel(models.Model):
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE)
    label = models.ForeignKey(Label, on_delete=models.CASCADE)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["membership", "label"], name="label_once_per_conversation")
        ]

    def __str__(self):
        return f"{self.label} on {self.membership}"


class Block(models.Model):
    """`blocker` no longer receives messages from `blocked`."""

    blocker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocks")
    blocked = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["blocker", "blocked"], name="block_once")]

    def __str__(self):
        return f"{self.blocker_id} blocks {self.blocked_id}"


class MessageTranslation(models.Model):
    """A received message put into a reader's language, cached per message and language."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="translations")
    target_language = models.CharField(max_length=8)
    source_language = models.CharField(max_length=8)
    text = models.TextField()
    backend = models.CharField(max_length=40)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message", "target_language"], name="one_translation_per_language"
            )
        ]

    def __str__(self):
        return f"message {self.message_id} in {self.target_language}"


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


class ResponseObligation(models.Model):
    """A buyer message a seller is expected to answer, for the response figures: the first
    message of a potential buyer (`inbox`), or a message tied to an open order (`order`).
    Answered by the seller's next message in the conversation. Written incrementally as
    messages are delivered and rebuilt in full by `recompute_response_rates`; both derive it
    from the messages the same way (inbox.services.responses)."""

    class Kind(models.TextChoices):
        INBOX = "inbox", "First message"
        ORDER = "order", "Order message"

    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    arrived_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    answer = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Left out of the figures from the start: it arrived while the seller was away.
    excluded_reason = models.CharField(max_length=16, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["seller", "arrived_at"], name="obligation_window"),
            models.Index(
                fields=["conversation", "seller"],
                condition=models.Q(answered_at__isnull=True),
                name="obligation_open",
            ),
        ]

    def __str__(self):
        return f"{self.kind} obligation of {self.seller_id} for message {self.message_id}"


class AutoReply(models.Model):
    """A seller's automatic answer to a buyer's first contact: sent once per conversation,
    marked as automatic, and never counted as an answer in the response figures."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="auto_reply")
    body = models.TextField()
    enabled = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"Auto-reply of {self.user_id} ({'on' if self.enabled else 'off'})"


class QuickResponse(models.Model):
    """A saved reply (title and text with placeholders such as {buyer_name}) its owner inserts
    into the composer."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quick_responses"
    )
    title = models.CharField(max_length=60)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint("user", Lower("title"), name="quick_response_title_unique"),
        ]

    def __str__(self):
        return f"{self.title} ({self.user_id})"
