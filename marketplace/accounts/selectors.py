from django.http import Http404
from django.shortcuts import get_object_or_404

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
