from zoneinfo import ZoneInfo

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from .models import AwayPeriod, User


def public_profile(*, username: str) -> User:
    """An active user with their profile, or 404."""
    if "\x00" in username:  # no username holds a NUL, and PostgreSQL refuses one even in a lookup
        raise Http404("No such user.")
    return get_object_or_404(
        User.objects.select_related("profile"), username__iexact=username, is_active=True
    )


def away_periods_between(*, user: User, first_day, last_day) -> list[AwayPeriod]:
    """The user's away periods that touch [first_day, last_day], in order."""
    return list(
        AwayPeriod.objects.filter(user=user, starts_on__lte=last_day, ends_on__gte=first_day).order_by(
            "starts_on"
        )
    )


def local_today(user: User):
    """Today in the user's own time zone: away dates are their calendar days."""
    return timezone.localtime(timezone=ZoneInfo(user.profile.timezone or "UTC")).date()


def current_away(*, user: User) -> AwayPeriod | None:
    """The away period the user is in today (their calendar), if any."""
    today = local_today(user)
    return AwayPeriod.objects.filter(user=user, starts_on__lte=today, ends_on__gte=today).first()


def planned_away(*, user: User) -> list[AwayPeriod]:
    """The current and coming away periods, soonest first."""
    return list(AwayPeriod.objects.filter(user=user, ends_on__gte=local_today(user)).order_by("starts_on"))
