from django.shortcuts import get_object_or_404

from .models import User


def public_profile(*, username: str) -> User:
    """An active user with their profile, or 404."""
    return get_object_or_404(User.objects.select_related("profile"), username=username, is_active=True)
