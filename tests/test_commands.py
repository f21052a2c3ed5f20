"""Management commands for operators and newcomers: create_user and seed_demo."""

import re
from io import StringIO

import pytest
from django.contrib.auth import SESSION_KEY
from django.core.management import CommandError, call_command

from inbox.models import Conversation, Event, Membership, Message
from marketplace.accounts.models import Profile, User
from orders.models import Gig

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


# --- create_user


def test_create_user_makes_a_buyer_by_default():
    output = run("create_user", "dora", "--password", "p")

    user = User.objects.get(username="dora")
    assert user.profile.role == Profile.Role.BUYER
    assert user.profile.display_name == "dora"
    assert user.email == ""
    assert not user.is_email_verified
    assert not user.is_staff
    assert not user.is_superuser
    assert user.check_password("p")
    assert user.password.startswith("argon2")
    assert f"Created buyer dora (id {user.pk})" in output


def test_create_user_with_every_option():
    output = run(
        "create_user",
        "erin",
        "--password",
        "s3cret",
        "--email",
        "erin@example.com",
        "--display-name",
        "Erin Lee",
        "--seller",
        "--verified",
        "--staff",
    )

    user = User.objects.get(username="erin")
    assert user.email == "erin@example.com"
    assert user.profile.role == Profile.Role.SELLER
    assert user.profile.display_name == "Erin Lee"
    assert user.is_email_verified
    assert user.is_staff
    assert user.check_password("s3cret")
    assert "Created seller erin" in output


def test_create_user_seller_alone_is_unverified_and_not_staff():
    run("create_user", "fay", "--password", "p", "--seller")

    user = User.objects.get(username="fay")
    assert user.profile.role == Profile.Role.SELLER
    assert not user.is_email_verified
    assert not user.is_staff


def test_a_staff_user_made_by_the_command_can_open_the_admin(client):
    run("create_user", "ops", "--password", "ops-pass", "--staff", "--verified")

    assert client.login(username="ops", password="ops-pass")
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("username", ["buyer", "BUYER"])
def test_create_user_with_an_existing_username_fails_and_changes_nothing(buyer, username):
    before = User.objects.values().get(pk=buyer.pk)
    profile_before = Profile.objects.values().get(user=buyer)

    with pytest.raises(CommandError, match="taken"):
        run("create_user", username, "--password", "other", "--seller", "--staff", "--email", "x@example.com")

    assert User.objects.count() == 1
    assert User.objects.values().get(pk=buyer.pk) == before
    assert Profile.objects.values().get(user=buyer) == profile_before


def test_create_user_needs_a_password():
    with pytest.raises(CommandError):
        run("create_user", "nopass")

    assert not User.objects.filter(username="nopass").exists()


# --- seed_demo


def counts() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "profiles": Profile.objects.count(),
        "gigs": Gig.objects.count(),
        "conversations": Conversation.objects.count(),
        "memberships": Membership.objects.count(),
        "messages": Message.objects.count(),
        "events": Event.objects.count(),
    }


def test_seed_demo_is_idempotent():
    run("seed_demo")
    first = counts()

    run("seed_demo")

    assert counts() == first
    assert first["users"] >= 4
    assert first["gigs"] >= 1
    assert first["conversations"] >= 1
    assert first["messages"] >= first["conversations"]
    assert first["events"] >= first["messages"]


def test_seed_demo_makes_buyers_and_sellers_with_profiles_and_gigs():
    run("seed_demo")

    roles = set(Profile.objects.values_list("role", flat=True))
    assert roles == {Profile.Role.BUYER, Profile.Role.SELLER}
    assert not Profile.objects.filter(display_name="").exists()
    assert all(gig.seller.profile.is_seller for gig in Gig.objects.select_related("seller__profile"))
    for conversation in Conversation.objects.all():
        assert conversation.last_message is not None
        assert conversation.memberships.count() == 2


def test_seed_demo_logins_printed_work(client):
    output = run("seed_demo")

    logins = re.findall(r"^\s+(\S+)\s+/\s+(\S+)\s", output, flags=re.MULTILINE)
    assert len(logins) >= 4
    assert ("admin", logins[0][1]) in logins
    for username, password in logins:
        response = client.post("/accounts/login/", {"username": username, "password": password})
        assert response.status_code == 302, username
        assert str(client.session[SESSION_KEY]) == str(User.objects.get(username=username).pk)
        client.post("/accounts/logout/")


def test_seed_demo_admin_reaches_the_admin(client):
    run("seed_demo")

    client.force_login(User.objects.get(username="admin"))

    assert client.get("/admin/").status_code == 200


def test_seed_demo_does_not_touch_a_user_who_already_exists(user_factory):
    existing = user_factory("alice", display_name="Someone Else")

    run("seed_demo")

    assert User.objects.get(pk=existing.pk).profile.display_name == "Someone Else"
    assert User.objects.filter(username__iexact="alice").count() == 1
