import zoneinfo

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone as django_timezone


def validate_timezone_name(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone (use a name like Europe/Paris).")


class AccountManager(UserManager):
    """Every user has a profile: the manager creates both, whoever creates the user.
    Usernames are unique and matched regardless of case ("Carla" logs in as "carla")."""

    def get_by_natural_key(self, username):
        return self.get(username__iexact=username)

    def _create_user(self, username, email, password, **extra_fields):
        user = super()._create_user(username, email, password, **extra_fields)
        Profile.objects.get_or_create(user=user, defaults={"display_name": username})
        return user


class User(AbstractUser):
    email_verified_at = models.DateTimeField(null=True, blank=True)

    objects = AccountManager()

    class Meta(AbstractUser.Meta):
        constraints = [models.UniqueConstraint(Lower("username"), name="username_unique_ignoring_case")]

    @property
    def is_email_verified(self) -> bool:
        return self.email_verified_at is not None


class Profile(models.Model):
    class Role(models.TextChoices):
        BUYER = "buyer", "Buyer"
        SELLER = "seller", "Seller"

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="profile")
    display_name = models.CharField(max_length=80)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.BUYER)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone_name])
    languages = models.JSONField(default=list, blank=True, help_text="Spoken languages, e.g. English, French")
    headline = models.CharField(max_length=160, blank=True)
    created_at = models.DateTimeField(default=django_timezone.now)
    # Inbox preferences
    enter_sends = models.BooleanField(
        default=True, help_text="Enter sends and Shift+Enter makes a new line; off: the other way round"
    )
    accepts_new_sellers = models.BooleanField(
        default=True,
        help_text="Buyers: sellers they have not contacted may write to them (where an order allows it)",
    )
    reading_language = models.CharField(
        max_length=8, default="en", help_text="Language received messages are translated into (ISO 639-1)"
    )

    def __str__(self):
        return f"{self.display_name} ({self.user.username})"

    @property
    def is_seller(self) -> bool:
        return self.role == self.Role.SELLER

    @property
    def avatar_initials(self) -> str:
        words = [w for w in self.display_name.split() if w[:1].isalnum()]
        if not words:
            return self.user.username[:2].upper()
        if len(words) == 1:
            return words[0][:2].upper()
        return (words[0][0] + words[-1][0]).upper()


class ApiToken(models.Model):
    """A bearer token for API and websocket clients. Only its SHA-256 digest is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8, help_text="First characters, to recognise a token")
    created_at = models.DateTimeField(default=django_timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self):
        return f"{self.prefix}… ({self.user.username})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > django_timezone.now()


class AwayPeriod(models.Model):
    """A seller's "Set availability": away from one date to another, with a message for buyers.
    Dates are the seller's own calendar days (their profile time zone)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="away_periods")
    starts_on = models.DateField()
    ends_on = models.DateField()
    message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=django_timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_on__gte=models.F("starts_on")), name="away_period_ordered"
            )
        ]
        indexes = [models.Index(fields=["user", "ends_on"], name="away_until")]

    def __str__(self):
        return f"{self.user} away {self.starts_on} to {self.ends_on}"
