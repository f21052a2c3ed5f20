"""Every write to accounts: users, profiles, email verification and API tokens."""

import hashlib
import secrets
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from marketplace.errors import Conflict, Forbidden, InvalidInput
from outbox.services import enqueue_task

from .models import ApiToken, AwayPeriod, Profile, User, validate_timezone_name
from .selectors import local_today
from .signals import access_revoked

VERIFY_EMAIL_SALT = "accounts.verify-email"
TOKEN_TOUCH_INTERVAL = timedelta(minutes=5)


def create_user(
    *,
    username: str,
    password: str,
    email: str = "",
    display_name: str = "",
    role: str = Profile.Role.BUYER,
    verified: bool = False,
    check_password_strength: bool = True,
    send_verification: bool = False,
) -> User:
    """Create a user with a profile. Refuses a taken username or a weak password."""
    username = username.strip()
    if not username:
        raise InvalidInput("A username is required.")
    if role not in Profile.Role.values:
        raise InvalidInput(f"Role must be one of {', '.join(Profile.Role.values)}.")
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict(f"The username {username!r} is taken.", code="username_taken")
    if check_password_strength:
        try:
            validate_password(password, User(username=username, email=email))
        except ValidationError as exc:
            raise InvalidInput(" ".join(exc.messages), code="weak_password") from exc
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, email=email, password=password)
            if verified:
                user.email_verified_at = timezone.now()
                user.save(update_fields=["email_verified_at"])
            Profile.objects.filter(user=user).update(display_name=display_name or username, role=role)
            if send_verification and email and not verified:
                queue_verification_email(user=user)
    except IntegrityError as exc:
        raise Conflict(f"The username {username!r} is taken.", code="username_taken") from exc
    user.refresh_from_db()
    return user


def ensure_profile(*, user: User) -> Profile:
    """Every user has a profile, however they were created: the admin's add form saves the user
    alone, and a user without a profile cannot open a single page."""
    profile, _created = Profile.objects.get_or_create(user=user, defaults={"display_name": user.username})
    return profile


def grant_staff(*, user: User, superuser: bool = True) -> None:
    """Let a user into the Django admin."""
    user.is_staff = True
    user.is_superuser = superuser
    user.save(update_fields=["is_staff", "is_superuser"])


def update_profile(
    *,
    user: User,
    display_name: str,
    timezone_name: str,
    languages: list[str],
    role: str,
    headline: str = "",
    accepts_new_sellers: bool | None = None,
) -> Profile:
    """`accepts_new_sellers` (None: unchanged) is the buyer's switch for sellers they have not
    contacted (moderation.rules)."""
    display_name = display_name.strip()
    if not display_name:
        raise InvalidInput("Display name cannot be empty.")
    if len(display_name) > 80:
        raise InvalidInput("Display name is at most 80 characters.")
    try:
        validate_timezone_name(timezone_name)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0], code="invalid_timezone") from exc
    if role not in Profile.Role.values:
        raise InvalidInput(f"Role must be one of {', '.join(Profile.Role.values)}.")
    cleaned_languages = [lang.strip()[:40] for lang in languages if lang.strip()][:10]
    profile = user.profile
    profile.display_name = display_name
    profile.timezone = timezone_name
    profile.languages = cleaned_languages
    profile.role = role
    profile.headline = headline.strip()[:160]
    if accepts_new_sellers is not None:
        if not isinstance(accepts_new_sellers, bool):
            raise InvalidInput("accepts_new_sellers is true or false.", code="invalid_preference")
        profile.accepts_new_sellers = accepts_new_sellers
    profile.save()
    return profile


READING_LANGUAGES = {
    "en": "English", "es": "Spanish", "fr": "French", "pt": "Portuguese", "de": "German", "it": "Italian",
    "ca": "Catalan", "gl": "Galician", "nl": "Dutch", "ja": "Japanese",
}  # fmt: skip


def update_inbox_preferences(
    *,
    user: User,
    enter_sends: bool | None = None,
    reading_language: str | None = None,
    accepts_new_sellers: bool | None = None,
):
    """How the composer treats Enter, which language received messages are translated into,
    and (for buyers) whether sellers they have not contacted may write to them. None: unchanged."""
    profile = user.profile
    if enter_sends is not None:
        if not isinstance(enter_sends, bool):
            raise InvalidInput("enter_sends is true or false.", code="invalid_preference")
        profile.enter_sends = enter_sends
    if reading_language is not None:
        if reading_language not in READING_LANGUAGES:
            raise InvalidInput(
                f"Choose a reading language among {', '.join(sorted(READING_LANGUAGES))}.",
                code="invalid_language",
            )
        profile.reading_language = reading_language
    if accepts_new_sellers is not None:
        if not isinstance(accepts_new_sellers, bool):
            raise InvalidInput("accepts_new_sellers is true or false.", code="invalid_preference")
        profile.accepts_new_sellers = accepts_new_sellers
    profile.save(update_fields=["enter_sends", "reading_language", "accepts_new_sellers"])
    return profile


AWAY_MAX_DAYS = 365


def set_away(*, user: User, starts_on, ends_on, message: str = "") -> AwayPeriod:
    """Record that a seller is away between two dates (inclusive), replacing any period that
    overlaps it. Buyers can still write; the dates explain the wait."""
    if not user.profile.is_seller:
        raise Forbidden("Set availability is for sellers.", code="not_a_seller")
    if not isinstance(starts_on, date) or not isinstance(ends_on, date):
        raise InvalidInput("Give the first and last day away as dates.", code="invalid_dates")
    if ends_on < starts_on:
        raise InvalidInput("The last day away comes after the first.", code="invalid_dates")
    if starts_on < local_today(user):
        # Days already past cannot be excused: that would erase unanswered messages from the rate.
        raise InvalidInput("Your time away starts today or later.", code="away_in_past")
    if (ends_on - starts_on).days > AWAY_MAX_DAYS:
        raise InvalidInput(f"An away period lasts at most {AWAY_MAX_DAYS} days.", code="invalid_dates")
    if not isinstance(message, str) or len(message) > 300 or "\x00" in message:
        raise InvalidInput("The away message is at most 300 characters.", code="invalid_message")
    with transaction.atomic():
        AwayPeriod.objects.filter(user=user, starts_on__lte=ends_on, ends_on__gte=starts_on).delete()
        return AwayPeriod.objects.create(
            user=user, starts_on=starts_on, ends_on=ends_on, message=message.strip()
        )


def end_away(*, user: User) -> None:
    """Back earlier than planned: the current period ends yesterday (the days already away
    still excuse the first messages that arrived then) and coming ones are removed."""
    today = local_today(user)
    with transaction.atomic():
        AwayPeriod.objects.filter(user=user, starts_on__gte=today).delete()
        AwayPeriod.objects.filter(user=user, ends_on__gte=today).update(ends_on=today - timedelta(days=1))


def email_verification_token(*, user: User) -> str:
    return signing.dumps({"user": user.pk, "email": user.email}, salt=VERIFY_EMAIL_SALT)


def queue_verification_email(*, user: User) -> None:
    """Send the verification link after the surrounding transaction commits."""
    enqueue_task("accounts.send_verification_email", user.pk)


def verify_email(*, token: str) -> User:
    """Mark the address in the signed token as verified. Valid for a few days, for one address."""
    max_age = timedelta(days=settings.EMAIL_VERIFICATION_MAX_AGE_DAYS)
    try:
        data = signing.loads(token, salt=VERIFY_EMAIL_SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise InvalidInput("This verification link has expired; ask for a new one.", code="expired") from exc
    except signing.BadSignature as exc:
        raise InvalidInput("This verification link is not valid.", code="bad_token") from exc
    user = User.objects.filter(pk=data.get("user"), email=data.get("email")).first()
    if user is None:
        raise InvalidInput("This verification link is for an address that changed.", code="bad_token")
    if user.email_verified_at is None:
        user.email_verified_at = timezone.now()
        user.save(update_fields=["email_verified_at"])
    return user


def _digest(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


def issue_api_token(*, user: User) -> tuple[ApiToken, str]:
    """Create a bearer token; the raw value is returned once and never stored."""
    raw = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        digest=_digest(raw),
        prefix=raw[:8],
        expires_at=timezone.now() + timedelta(days=settings.API_TOKEN_TTL_DAYS),
    )
    return token, raw


def revoke_api_token(*, token: ApiToken) -> None:
    """Revoke a token; sockets opened with it close too."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    access_revoked.send(sender=ApiToken, user_id=token.user_id, credential=f"token:{token.pk}")


def deactivate_user(*, user: User) -> None:
    """Take away all access: the account, its tokens and every open socket."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(is_active=False)
        ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    user.is_active = False
    announce_access_revoked(user=user)


def announce_access_revoked(*, user: User) -> None:
    """Tell open sockets that the user no longer has access (e.g. deactivated in the admin)."""
    access_revoked.send(sender=User, user_id=user.pk, credential=None)


def user_for_api_token(raw_token: str) -> User | None:
    """The active user a raw bearer token belongs to, or None. Records when it was last used."""
    if not raw_token or len(raw_token) > 200:
        return None
    # The profile too: nearly every API call reads it (role, time zone, display name).
    token = ApiToken.objects.select_related("user__profile").filter(digest=_digest(raw_token)).first()
    if token is None or not token.is_active or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH_INTERVAL:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.user.api_token = token
    return token.user
