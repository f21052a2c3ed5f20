from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from marketplace.accounts.models import User


class Gig(models.Model):
    """A service a seller offers. Orders and custom offers build on it."""

    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="gigs")
    title = models.CharField(max_length=120)
    description = models.TextField(max_length=5000)
    price = models.DecimalField(max_digits=9, decimal_places=2, validators=[MinValueValidator(Decimal("5"))])
    delivery_days = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    revisions = models.PositiveSmallIntegerField(default=1)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["is_active", "-created_at"])]

    def __str__(self):
        return self.title


class BuyerRequest(models.Model):
    """A buyer's brief sent to one seller: what they need, their budget and deadline."""

    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="requests_sent"
    )
    seller = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="requests_received"
    )
    conversation = models.ForeignKey("inbox.Conversation", on_delete=models.CASCADE, related_name="requests")
    message = models.OneToOneField("inbox.Message", null=True, on_delete=models.SET_NULL, related_name="+")
    description = models.TextField(max_length=2000)
    budget = models.DecimalField(max_digits=9, decimal_places=2)
    deadline = models.DateField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"Request {self.pk} from {self.buyer_id} to {self.seller_id}"


class CustomOffer(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        WITHDRAWN = "withdrawn", "Withdrawn"
        EXPIRED = "expired", "Expired"

    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="offers_made")
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="offers_received"
    )
    conversation = models.ForeignKey("inbox.Conversation", on_delete=models.CASCADE, related_name="offers")
    message = models.OneToOneField("inbox.Message", null=True, on_delete=models.SET_NULL, related_name="+")
    gig = models.ForeignKey(Gig, null=True, blank=True, on_delete=models.SET_NULL, related_name="offers")
    title = models.CharField(max_length=120)
    description = models.TextField(max_length=2000)
    price = models.DecimalField(max_digits=9, decimal_places=2)
    delivery_days = models.PositiveSmallIntegerField()
    revisions = models.PositiveSmallIntegerField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "expires_at"], name="offer_expiry")]

    def __str__(self):
        return f"Offer {self.pk}: {self.title}"


class Order(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "In progress"
        DELIVERED = "delivered", "Delivered"
        REVISION_REQUESTED = "revision_requested", "Revision requested"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    OPEN_STATUSES = (Status.ACTIVE, Status.DELIVERED, Status.REVISION_REQUESTED)

    number = models.CharField(max_length=12, unique=True, help_text="Shown to people, e.g. FO7K2Q9XB1")
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders_bought"
    )
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders_sold")
    conversation = models.ForeignKey("inbox.Conversation", on_delete=models.PROTECT, related_name="orders")
    gig = models.ForeignKey(Gig, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders")
    offer = models.OneToOneField(
        CustomOffer, null=True, blank=True, on_delete=models.PROTECT, related_name="order"
    )
    title = models.CharField(max_length=120)
    description = models.TextField(max_length=2000)
    price = models.DecimalField(max_digits=9, decimal_places=2)
    delivery_days = models.PositiveSmallIntegerField()
    revisions_included = models.PositiveSmallIntegerField()
    revisions_used = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    requirements = models.TextField(blank=True)
    requirements_submitted_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["buyer", "-created_at"], name="orders_of_buyer"),
            models.Index(fields=["seller", "-created_at"], name="orders_of_seller"),
        ]

    def __str__(self):
        return f"#{self.number}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def revisions_left(self) -> int:
        return max(self.revisions_included - self.revisions_used, 0)


class OrderEvent(models.Model):
    """The order's timeline, one row per change (who, what, when); each also posts a system
    message into the conversation."""

    class Kind(models.TextChoices):
        CREATED = "created", "Order created"
        PAYMENT = "payment", "Payment recorded"
        REQUIREMENTS = "requirements_submitted", "Requirements submitted"
        DELIVERED = "delivered", "Delivered"
        REVISION = "revision_requested", "Revision requested"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        REVIEW = "review", "Review left"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    message = models.OneToOneField("inbox.Message", null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.get_kind_display()} on #{self.order.number}"


class Review(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="reviews")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews_written"
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews_received"
    )
    rating = models.PositiveSmallIntegerField()
    text = models.TextField(max_length=2000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order", "author"], name="one_review_per_side"),
            models.CheckConstraint(condition=models.Q(rating__gte=1, rating__lte=5), name="rating_1_to_5"),
        ]

    def __str__(self):
        return f"{self.rating}/5 on #{self.order.number} by {self.author_id}"


class Call(models.Model):
    """A video call a seller starts, or a consultation slot the seller offers and a buyer books."""

    class Kind(models.TextChoices):
        CALL = "call", "Video call"
        CONSULTATION = "consultation", "Consultation"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        OFFERED = "offered", "Offered"
        BOOKED = "booked", "Booked"

    conversation = models.ForeignKey("inbox.Conversation", on_delete=models.CASCADE, related_name="calls")
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    message = models.OneToOneField("inbox.Message", null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=15, choices=Kind.choices)
    url = models.URLField(max_length=300)
    starts_at = models.DateTimeField(null=True, blank=True)
    duration_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    booked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.get_kind_display()} in conversation {self.conversation_id}"


class Buyer(User):
    """Users as buyers, for the admin's "Buyers" list of the Top buyer rule (no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = "buyer"
        verbose_name_plural = "buyers (Top buyer rule)"
