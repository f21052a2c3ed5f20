"""Test data built the way the product builds it: through the services where it matters."""

from django.utils import timezone

from marketplace.accounts.models import Profile, User
from marketplace.accounts.services import issue_api_token, update_profile

TEST_PASSWORD = "correct-horse-battery-staple"


def make_user(
    username: str,
    *,
    password_hash: str,
    seller: bool = False,
    verified: bool = True,
    display_name: str = "",
    timezone_name: str = "UTC",
    languages: tuple[str, ...] = ("English",),
) -> User:
    """A user whose password is TEST_PASSWORD (a precomputed argon2 hash, to keep tests fast)."""
    user = User.objects.create_user(username=username, email=f"{username}@example.com", password=None)
    user.password = password_hash
    user.email_verified_at = timezone.now() if verified else None
    user.save(update_fields=["password", "email_verified_at"])
    update_profile(
        user=user,
        display_name=display_name or username.title(),
        timezone_name=timezone_name,
        languages=list(languages),
        role=Profile.Role.SELLER if seller else Profile.Role.BUYER,
    )
    user.refresh_from_db()
    return user


def bearer_headers(user) -> dict:
    """Headers for Django's test client carrying a fresh API token of `user`."""
    _token, raw = issue_api_token(user=user)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
