"""Accounts services: users, profiles, email verification and API tokens."""

import hashlib
import re
import time
import types
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core import signing
from django.utils import timezone

from marketplace.accounts.models import ApiToken, Profile, User
from marketplace.accounts.services import (
    VERIFY_EMAIL_SALT,
    create_user,
    email_verification_token,
    issue_api_token,
    revoke_api_token,
    update_profile,
    user_for_api_token,
    verify_email,
)
from marketplace.errors import Conflict, InvalidInput

STRONG_PASSWORD = "plum-orchard-sunset-42"


def travel_signing_clock(monkeypatch, seconds: float) -> None:
    """Make django.core.signing read a clock `seconds` ahead of now (negative: in the past)."""
    real_time = time.time
    monkeypatch.setattr(signing, "time", types.SimpleNamespace(time=lambda: real_time() + seconds))


# --- create_user


@pytest.mark.django_db
def test_create_user_makes_a_profile_with_display_name_and_role():
    user = create_user(
        username="carla",
        password=STRONG_PASSWORD,
        email="carla@example.com",
        display_name="Carla Mendes",
        role=Profile.Role.SELLER,
    )

    profile = Profile.objects.get(user=user)
    assert profile.display_name == "Carla Mendes"
    assert profile.role == Profile.Role.SELLER
    assert profile.is_seller
    assert user.email == "carla@example.com"
    assert user.is_email_verified is False


@pytest.mark.django_db
def test_create_user_defaults_display_name_to_username_and_role_to_buyer():
    user = create_user(username="ben", password=STRONG_PASSWORD)

    assert user.profile.display_name == "ben"
    assert user.profile.role == Profile.Role.BUYER


@pytest.mark.django_db
def test_create_user_verified_marks_the_address_confirmed():
    user = create_user(username="vera", password=STRONG_PASSWORD, email="vera@example.com", verified=True)

    assert user.is_email_verified
    assert User.objects.get(pk=user.pk).email_verified_at is not None


@pytest.mark.django_db
def test_new_password_is_hashed_with_argon2():
    user = create_user(username="hashy", password=STRONG_PASSWORD)

    stored = User.objects.get(pk=user.pk).password
    assert stored.startswith("argon2")
    assert STRONG_PASSWORD not in stored
    assert check_password(STRONG_PASSWORD, stored)
    assert not check_password("wrong-password-123", stored)


@pytest.mark.django_db
@pytest.mark.parametrize("taken", ["buyer", "BUYER", "Buyer", "  buyer  "])
def test_create_user_refuses_a_taken_username_whatever_its_case(buyer, taken):
    with pytest.raises(Conflict) as excinfo:
        create_user(username=taken, password=STRONG_PASSWORD)

    assert excinfo.value.code == "username_taken"
    assert User.objects.filter(username__iexact="buyer").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("weak", ["short", "password", "12345678901", "weakling"])
def test_create_user_refuses_a_weak_password_when_strength_is_checked(weak):
    with pytest.raises(InvalidInput) as excinfo:
        create_user(username="weakling", password=weak, email="weakling@example.com")

    assert excinfo.value.code == "weak_password"
    assert not User.objects.filter(username="weakling").exists()
    assert not Profile.objects.filter(user__username="weakling").exists()


@pytest.mark.django_db
def test_create_user_accepts_a_weak_password_when_strength_is_not_checked():
    user = create_user(username="script", password="p", check_password_strength=False)

    assert user.check_password("p")


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["", "   "])
def test_create_user_requires_a_username(username):
    with pytest.raises(InvalidInput):
        create_user(username=username, password=STRONG_PASSWORD)

    assert User.objects.count() == 0


@pytest.mark.django_db
def test_create_user_refuses_an_unknown_role():
    with pytest.raises(InvalidInput):
        create_user(username="admin2", password=STRONG_PASSWORD, role="admin")

    assert not User.objects.filter(username="admin2").exists()


@pytest.mark.django_db
def test_create_user_with_send_verification_emails_the_link_after_commit(
    django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        user = create_user(
            username="newbie", password=STRONG_PASSWORD, email="newbie@example.com", send_verification=True
        )

    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["newbie@example.com"]
    # The token carries the second it was made, so compare what it opens, not its text.
    token = re.search(r"/accounts/verify/([^/\s]+)/", mailoutbox[0].body).group(1)
    assert verify_email(token=token) == user


@pytest.mark.django_db
def test_create_user_sends_no_verification_to_an_already_verified_user(
    django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        create_user(
            username="known",
            password=STRONG_PASSWORD,
            email="known@example.com",
            verified=True,
            send_verification=True,
        )

    assert mailoutbox == []


# --- update_profile


def _update(user, **overrides):
    fields = {
        "display_name": "Bella B.",
        "timezone_name": "America/New_York",
        "languages": ["English"],
        "role": Profile.Role.BUYER,
        "headline": "",
    }
    fields.update(overrides)
    return update_profile(user=user, **fields)


@pytest.mark.django_db
def test_update_profile_saves_every_field(buyer):
    _update(buyer, display_name="  Bella B.  ", role=Profile.Role.SELLER, headline="  I bake  ")

    profile = Profile.objects.get(user=buyer)
    assert profile.display_name == "Bella B."
    assert profile.timezone == "America/New_York"
    assert profile.role == Profile.Role.SELLER
    assert profile.headline == "I bake"


@pytest.mark.django_db
@pytest.mark.parametrize("bad_timezone", ["Mars/Olympus_Mons", "", "europe/paris", "UTC+2"])
def test_update_profile_refuses_an_unknown_timezone(buyer, bad_timezone):
    with pytest.raises(InvalidInput) as excinfo:
        _update(buyer, timezone_name=bad_timezone, display_name="Changed")

    assert excinfo.value.code == "invalid_timezone"
    profile = Profile.objects.get(user=buyer)
    assert profile.timezone == "Europe/Paris"
    assert profile.display_name == "Bella Buyer"


@pytest.mark.django_db
@pytest.mark.parametrize("empty", ["", "   ", "\t\n"])
def test_update_profile_refuses_an_empty_display_name(buyer, empty):
    with pytest.raises(InvalidInput):
        _update(buyer, display_name=empty)

    assert Profile.objects.get(user=buyer).display_name == "Bella Buyer"


@pytest.mark.django_db
def test_update_profile_refuses_a_display_name_over_80_characters(buyer):
    with pytest.raises(InvalidInput):
        _update(buyer, display_name="x" * 81)

    _update(buyer, display_name="x" * 80)
    assert Profile.objects.get(user=buyer).display_name == "x" * 80


@pytest.mark.django_db
def test_update_profile_refuses_an_unknown_role(buyer):
    with pytest.raises(InvalidInput):
        _update(buyer, role="admin")

    assert Profile.objects.get(user=buyer).role == Profile.Role.BUYER


@pytest.mark.django_db
def test_update_profile_cleans_languages(buyer):
    _update(buyer, languages=[" English ", "", "   ", "French", " Yoruba"])

    assert Profile.objects.get(user=buyer).languages == ["English", "French", "Yoruba"]


@pytest.mark.django_db
def test_update_profile_caps_the_number_and_length_of_languages(buyer):
    _update(buyer, languages=[f"Language {n}" for n in range(15)] + ["x" * 100])

    languages = Profile.objects.get(user=buyer).languages
    assert languages == [f"Language {n}" for n in range(10)]

    _update(buyer, languages=["y" * 100])
    assert Profile.objects.get(user=buyer).languages == ["y" * 40]


# --- avatar_initials


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("display_name", "initials"),
    [
        ("Bella Buyer", "BB"),
        ("mary ann smith", "MS"),
        ("Cher", "CH"),
        ("Élodie Durand", "ÉD"),
        ("Jean-Luc Picard", "JP"),
        ("  Mai   Tanaka  ", "MT"),
        ("🎉 Party", "PA"),
    ],
)
def test_avatar_initials(user_factory, display_name, initials):
    user = user_factory("someone")
    Profile.objects.filter(user=user).update(display_name=display_name)

    assert Profile.objects.get(user=user).avatar_initials == initials


@pytest.mark.django_db
@pytest.mark.parametrize("display_name", ["", "🎉 ✨", "-- --"])
def test_avatar_initials_fall_back_to_the_username(user_factory, display_name):
    user = user_factory("zoe_k")
    Profile.objects.filter(user=user).update(display_name=display_name)

    assert Profile.objects.get(user=user).avatar_initials == "ZO"


# --- email verification


@pytest.mark.django_db
def test_a_valid_token_verifies_the_address(user_factory):
    user = user_factory("unverified", verified=False)

    verified = verify_email(token=email_verification_token(user=user))

    assert verified == user
    assert User.objects.get(pk=user.pk).is_email_verified


@pytest.mark.django_db
def test_verifying_twice_keeps_the_first_verification_time(user_factory):
    user = user_factory("twice", verified=False)
    token = email_verification_token(user=user)
    verify_email(token=token)
    first = User.objects.get(pk=user.pk).email_verified_at

    verify_email(token=token)

    assert User.objects.get(pk=user.pk).email_verified_at == first


@pytest.mark.django_db
@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),
        lambda token: "x" + token,
        lambda token: token.split(":", 1)[1],
        lambda token: "",
        lambda token: "not-a-token",
    ],
    ids=["last-char", "prefixed", "payload-dropped", "empty", "garbage"],
)
def test_a_tampered_token_is_refused(user_factory, tamper):
    user = user_factory("tampered", verified=False)

    with pytest.raises(InvalidInput) as excinfo:
        verify_email(token=tamper(email_verification_token(user=user)))

    assert excinfo.value.code == "bad_token"
    assert not User.objects.get(pk=user.pk).is_email_verified


@pytest.mark.django_db
def test_a_token_signed_for_another_user_id_with_a_wrong_key_is_refused(user_factory):
    victim = user_factory("victim", verified=False)
    forged = signing.dumps(
        {"user": victim.pk, "email": victim.email}, key="not-the-secret-key", salt=VERIFY_EMAIL_SALT
    )

    with pytest.raises(InvalidInput):
        verify_email(token=forged)

    assert not User.objects.get(pk=victim.pk).is_email_verified


@pytest.mark.django_db
def test_a_token_older_than_the_max_age_is_expired(user_factory, monkeypatch):
    user = user_factory("late", verified=False)
    token = email_verification_token(user=user)
    max_age = timedelta(days=settings.EMAIL_VERIFICATION_MAX_AGE_DAYS).total_seconds()

    travel_signing_clock(monkeypatch, max_age + 60)

    with pytest.raises(InvalidInput) as excinfo:
        verify_email(token=token)
    assert excinfo.value.code == "expired"
    assert not User.objects.get(pk=user.pk).is_email_verified


@pytest.mark.django_db
def test_a_token_built_long_ago_is_expired(user_factory, monkeypatch):
    user = user_factory("old", verified=False)
    max_age = timedelta(days=settings.EMAIL_VERIFICATION_MAX_AGE_DAYS).total_seconds()
    travel_signing_clock(monkeypatch, -(max_age + 3600))
    old_token = email_verification_token(user=user)
    monkeypatch.undo()

    with pytest.raises(InvalidInput) as excinfo:
        verify_email(token=old_token)
    assert excinfo.value.code == "expired"


@pytest.mark.django_db
def test_a_token_just_inside_the_max_age_still_works(user_factory, monkeypatch):
    user = user_factory("nearly", verified=False)
    token = email_verification_token(user=user)
    max_age = timedelta(days=settings.EMAIL_VERIFICATION_MAX_AGE_DAYS).total_seconds()

    travel_signing_clock(monkeypatch, max_age - 60)

    assert verify_email(token=token) == user
    assert User.objects.get(pk=user.pk).is_email_verified


@pytest.mark.django_db
def test_a_token_for_an_address_that_changed_is_refused(user_factory):
    user = user_factory("mover", verified=False)
    token = email_verification_token(user=user)
    User.objects.filter(pk=user.pk).update(email="new-address@example.com")

    with pytest.raises(InvalidInput) as excinfo:
        verify_email(token=token)

    assert excinfo.value.code == "bad_token"
    assert not User.objects.get(pk=user.pk).is_email_verified


@pytest.mark.django_db
def test_a_token_for_a_deleted_user_is_refused(user_factory):
    user = user_factory("gone", verified=False)
    token = email_verification_token(user=user)
    User.objects.filter(pk=user.pk).delete()

    with pytest.raises(InvalidInput):
        verify_email(token=token)


# --- API tokens


@pytest.mark.django_db
def test_issued_token_stores_only_the_sha256_digest(buyer):
    token, raw = issue_api_token(user=buyer)

    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.user == buyer
    assert stored.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert stored.prefix == raw[:8]
    row_values = ApiToken.objects.filter(pk=token.pk).values().get()
    assert all(raw not in str(value) for value in row_values.values())
    assert len(raw) >= 32


@pytest.mark.django_db
def test_issued_token_expires_after_the_configured_ttl(buyer):
    before = timezone.now()
    token, _raw = issue_api_token(user=buyer)

    ttl = timedelta(days=settings.API_TOKEN_TTL_DAYS)
    assert before + ttl <= token.expires_at <= timezone.now() + ttl


@pytest.mark.django_db
def test_each_issued_token_is_different(buyer):
    _first, raw_one = issue_api_token(user=buyer)
    _second, raw_two = issue_api_token(user=buyer)

    assert raw_one != raw_two
    assert user_for_api_token(raw_one) == buyer
    assert user_for_api_token(raw_two) == buyer


@pytest.mark.django_db
def test_user_for_api_token_accepts_a_good_token_and_records_its_use(buyer):
    token, raw = issue_api_token(user=buyer)

    user = user_for_api_token(raw)

    assert user == buyer
    assert user.api_token.pk == token.pk
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


@pytest.mark.django_db
def test_user_for_api_token_refuses_a_revoked_token(buyer):
    token, raw = issue_api_token(user=buyer)

    revoke_api_token(token=token)

    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert user_for_api_token(raw) is None


@pytest.mark.django_db
def test_revoking_one_token_leaves_the_others_working(buyer):
    first, raw_one = issue_api_token(user=buyer)
    _second, raw_two = issue_api_token(user=buyer)

    revoke_api_token(token=first)

    assert user_for_api_token(raw_one) is None
    assert user_for_api_token(raw_two) == buyer


@pytest.mark.django_db
def test_user_for_api_token_refuses_an_expired_token(buyer):
    token, raw = issue_api_token(user=buyer)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert user_for_api_token(raw) is None


@pytest.mark.django_db
def test_user_for_api_token_refuses_a_deactivated_user(buyer):
    _token, raw = issue_api_token(user=buyer)
    User.objects.filter(pk=buyer.pk).update(is_active=False)

    assert user_for_api_token(raw) is None


@pytest.mark.django_db
@pytest.mark.parametrize("garbage", ["", "nope", "Bearer x", "a" * 43, "x" * 5000, "\x00", "é" * 10])
def test_user_for_api_token_refuses_garbage(buyer, garbage):
    issue_api_token(user=buyer)

    assert user_for_api_token(garbage) is None


@pytest.mark.django_db
def test_the_digest_itself_is_not_a_token(buyer):
    token, _raw = issue_api_token(user=buyer)

    assert user_for_api_token(token.digest) is None
