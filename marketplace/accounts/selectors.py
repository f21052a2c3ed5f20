from django.http import Http404
from django.shortcuts import get_object_or_404

from .models import User


def public_profile(*, username: str) -> User:
    """An active user with their profile, or 404."""
    if "\x00" in username:  # no username holds a NUL, and PostgreSQL refuses one even in a lookup
        raise Http404("No such user.")
    return get_object_or_404(
        User.objects.select_related("profile"), username__iexact=username, is_active=True
    )
