from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone


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
