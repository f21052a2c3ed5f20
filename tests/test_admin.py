"""The Django admin as staff use it: users with profiles, conversations, messages, events and
tokens; history (conversations, messages, events) can be read but not rewritten."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.utils import timezone

from inbox.models import Conversation, Event, Message
from inbox.services import send_message, start_conversation
from marketplace.accounts.models import ApiToken, Profile, User
from marketplace.accounts.services import issue_api_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(buyer, seller):
    conversation, _message, _created = start_conversation(
        sender=buyer, recipient_username="seller", body="Do you bake sourdough logos?"
    )
    send_message(sender=seller, conversation=conversation, body="Yes, rustic ones are my favourite.")
    send_message(sender=buyer, conversation=conversation, body="Great, here is my brief.")
    return conversation


def message_with(body: str) -> Message:
    return Message.objects.get(body=body)


def results(response) -> list:
    assert response.status_code == 200, response.status_code
    return list(response.context["cl"].result_list)


def filter_link(response, parameter: str, title: str) -> str:
    """The query string of a sidebar filter choice, as a staff member would click it."""
    changelist = response.context["cl"]
    for spec in changelist.filter_specs:
        if any(name.startswith(f"{parameter}__") for name in spec.expected_parameters()):
            for choice in spec.choices(changelist):
                if str(choice["display"]) == title:
                    return choice["query_string"]
    raise AssertionError(f"no {title!r} choice in the {parameter} filter")


# --- access


def test_a_non_staff_user_is_sent_to_the_admin_login(client, buyer):
    client.force_login(buyer)

    response = client.get("/admin/inbox/message/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_admin_index_lists_every_section(staff_client):
    page = staff_client.get("/admin/").content.decode()

    for url in [
        "/admin/accounts/user/",
        "/admin/accounts/apitoken/",
        "/admin/inbox/conversation/",
        "/admin/inbox/message/",
        "/admin/inbox/event/",
    ]:
        assert url in page


# --- users


def test_users_changelist_shows_profiles(staff_client, buyer, seller):
    response = staff_client.get("/admin/accounts/user/")

    assert set(results(response)) >= {buyer, seller}
    page = response.content.decode()
    assert "Bella Buyer" in page
    assert "Sam Seller" in page


def test_users_can_be_searched_by_display_name_and_filtered_by_role(staff_client, buyer, seller):
    assert results(staff_client.get("/admin/accounts/user/", {"q": "Bella"})) == [buyer]

    response = staff_client.get("/admin/accounts/user/")
    sellers = staff_client.get("/admin/accounts/user/" + filter_link(response, "profile__role", "Seller"))
    assert results(sellers) == [seller]


def test_user_change_page_has_the_profile_inline(staff_client, buyer):
    response = staff_client.get(f"/admin/accounts/user/{buyer.pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="profile-0-display_name"' in page
    assert 'value="Bella Buyer"' in page
    assert 'name="profile-0-timezone"' in page
    assert 'value="Europe/Paris"' in page
    assert 'name="email_verified_at_0"' in page


def add_user_form(username: str, **profile) -> dict:
    """What the browser posts from the admin's add-user page, profile inline as rendered."""
    return {
        "username": username,
        "usable_password": "true",
        "password1": "plum-orchard-sunset-42",
        "password2": "plum-orchard-sunset-42",
        "profile-TOTAL_FORMS": "1",
        "profile-INITIAL_FORMS": "0",
        "profile-MIN_NUM_FORMS": "0",
        "profile-MAX_NUM_FORMS": "1",
        "profile-0-display_name": profile.get("display_name", ""),
        "profile-0-role": profile.get("role", "buyer"),
        "profile-0-timezone": profile.get("timezone", "UTC"),
        "profile-0-languages": "[]",
        "initial-profile-0-languages": "[]",
        "profile-0-headline": "",
    }


def test_a_user_added_in_the_admin_without_touching_the_profile_gets_one(staff_client):
    response = staff_client.post("/admin/accounts/user/add/", add_user_form("walkin"))

    assert response.status_code == 302
    added = User.objects.get(username="walkin")
    assert Profile.objects.get(user=added).display_name == "walkin"
    assert staff_client.get("/admin/accounts/user/").status_code == 200
    staff_client.force_login(added)
    assert staff_client.get("/").status_code == 200


def test_a_user_added_in_the_admin_keeps_the_profile_typed_in(staff_client):
    form = add_user_form("sella", display_name="Sella Smith", role="seller", timezone="Africa/Lagos")

    assert staff_client.post("/admin/accounts/user/add/", form).status_code == 302

    profile = Profile.objects.get(user__username="sella")
    assert (profile.display_name, profile.role, profile.timezone) == ("Sella Smith", "seller", "Africa/Lagos")


# --- conversations


def test_conversations_changelist_and_search(staff_client, conversation):
    assert results(staff_client.get("/admin/inbox/conversation/")) == [conversation]
    assert results(staff_client.get("/admin/inbox/conversation/", {"q": "sourdough"})) == [conversation]
    assert results(staff_client.get("/admin/inbox/conversation/", {"q": "seller"})) == [conversation]
    assert results(staff_client.get("/admin/inbox/conversation/", {"q": "nothing-like-this"})) == []


def test_conversation_search_by_a_word_in_several_messages_lists_it_once(staff_client, conversation):
    assert results(staff_client.get("/admin/inbox/conversation/", {"q": "e"})) == [conversation]


def test_conversation_page_shows_its_messages_and_members(staff_client, conversation):
    response = staff_client.get(f"/admin/inbox/conversation/{conversation.pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Do you bake sourdough logos?" in page
    assert "Yes, rustic ones are my favourite." in page
    assert "Great, here is my brief." in page
    assert 'name="_save"' not in page


# --- messages


def test_messages_changelist_lists_every_message(staff_client, conversation):
    response = staff_client.get("/admin/inbox/message/")

    assert len(results(response)) == 3
    assert "Do you bake sourdough logos?" in response.content.decode()


def test_messages_search_by_text(staff_client, conversation):
    found = results(staff_client.get("/admin/inbox/message/", {"q": "rustic"}))

    assert found == [message_with("Yes, rustic ones are my favourite.")]


def test_messages_search_by_username(staff_client, conversation):
    found = results(staff_client.get("/admin/inbox/message/", {"q": "seller"}))

    assert found == [message_with("Yes, rustic ones are my favourite.")]
    by_buyer = results(staff_client.get("/admin/inbox/message/", {"q": "buyer"}))
    assert sorted(message.body for message in by_buyer) == [
        "Do you bake sourdough logos?",
        "Great, here is my brief.",
    ]


def test_messages_filter_by_status(staff_client, conversation):
    held = message_with("Great, here is my brief.")
    Message.objects.filter(pk=held.pk).update(status=Message.Status.HELD)
    response = staff_client.get("/admin/inbox/message/")

    held_only = staff_client.get("/admin/inbox/message/" + filter_link(response, "status", "Held for review"))
    visible_only = staff_client.get("/admin/inbox/message/" + filter_link(response, "status", "Visible"))

    assert results(held_only) == [held]
    assert held not in results(visible_only)
    assert len(results(visible_only)) == 2


def test_messages_filter_by_date(staff_client, conversation):
    old = message_with("Do you bake sourdough logos?")
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    response = staff_client.get("/admin/inbox/message/")

    today = staff_client.get("/admin/inbox/message/" + filter_link(response, "created_at", "Today"))
    this_week = staff_client.get("/admin/inbox/message/" + filter_link(response, "created_at", "Past 7 days"))

    assert old not in results(today)
    assert len(results(today)) == 2
    assert old not in results(this_week)
    old_year = (timezone.now() - timedelta(days=40)).year
    assert old in results(staff_client.get("/admin/inbox/message/", {"created_at__year": old_year}))


def test_message_page_shows_it_read_only(staff_client, conversation):
    message = message_with("Great, here is my brief.")

    response = staff_client.get(f"/admin/inbox/message/{message.pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Great, here is my brief." in page
    assert 'name="_save"' not in page
    assert 'name="body"' not in page


# --- events


def test_events_changelist_and_page(staff_client, conversation, buyer):
    response = staff_client.get("/admin/inbox/event/")

    events = results(response)
    assert len(events) == Event.objects.count() > 0
    assert "message.created" in response.content.decode()
    assert results(staff_client.get("/admin/inbox/event/", {"q": "buyer"})) == list(
        Event.objects.filter(user=buyer).order_by("-created_at")
    )
    event = events[0]
    assert staff_client.get(f"/admin/inbox/event/{event.pk}/change/").status_code == 200


# --- history cannot be rewritten


def history_objects(conversation):
    return [
        ("conversation", Conversation, conversation.pk),
        ("message", Message, Message.objects.filter(conversation=conversation).first().pk),
        ("event", Event, Event.objects.first().pk),
    ]


@pytest.mark.parametrize("model", [Conversation, Message, Event])
def test_history_admins_grant_no_add_change_or_delete(staff, model):
    request = RequestFactory().get("/admin/")
    request.user = staff
    model_admin = admin.site._registry[model]

    assert model_admin.has_add_permission(request) is False
    assert model_admin.has_change_permission(request) is False
    assert model_admin.has_delete_permission(request) is False
    assert model_admin.has_view_permission(request) is True


def test_history_has_no_add_page(staff_client, conversation):
    for name, _model, _pk in history_objects(conversation):
        assert staff_client.get(f"/admin/inbox/{name}/add/").status_code == 403, name
        assert staff_client.post(f"/admin/inbox/{name}/add/", {}).status_code == 403, name


def test_history_cannot_be_changed_by_a_post(staff_client, conversation):
    message = message_with("Great, here is my brief.")

    response = staff_client.post(
        f"/admin/inbox/message/{message.pk}/change/",
        {"body": "rewritten", "status": "rejected", "sender": message.sender_id},
    )

    assert response.status_code == 403
    message.refresh_from_db()
    assert message.body == "Great, here is my brief."
    assert message.status == Message.Status.VISIBLE


def test_history_cannot_be_deleted(staff_client, conversation):
    for name, model, pk in history_objects(conversation):
        assert staff_client.get(f"/admin/inbox/{name}/{pk}/delete/").status_code == 403, name
        assert staff_client.post(f"/admin/inbox/{name}/{pk}/delete/", {"post": "yes"}).status_code == 403
        assert model.objects.filter(pk=pk).exists(), name


def test_history_cannot_be_bulk_deleted(staff_client, conversation):
    for name, model, pk in history_objects(conversation):
        changelist = staff_client.get(f"/admin/inbox/{name}/")
        assert "delete_selected" not in changelist.content.decode(), name

        staff_client.post(
            f"/admin/inbox/{name}/",
            {"action": "delete_selected", "_selected_action": [pk], "post": "yes"},
        )

        assert model.objects.filter(pk=pk).exists(), name


# --- API tokens


def test_token_admin_shows_tokens_by_prefix_and_never_the_digest(staff_client, buyer):
    token, raw = issue_api_token(user=buyer)

    changelist = staff_client.get("/admin/accounts/apitoken/")
    change_page = staff_client.get(f"/admin/accounts/apitoken/{token.pk}/change/")

    assert results(changelist) == [token]
    for response in (changelist, change_page):
        assert response.status_code == 200
        page = response.content.decode()
        assert token.prefix in page
        assert token.digest not in page
        assert raw not in page
        assert "digest" not in page.lower()


def test_token_admin_search_by_username(staff_client, buyer, seller):
    buyer_token, _raw = issue_api_token(user=buyer)
    issue_api_token(user=seller)

    assert results(staff_client.get("/admin/accounts/apitoken/", {"q": "buyer"})) == [buyer_token]


def test_token_admin_cannot_add_tokens(staff_client):
    assert staff_client.get("/admin/accounts/apitoken/add/").status_code == 403


def test_token_admin_revokes_selected_tokens(staff_client, buyer):
    token, raw = issue_api_token(user=buyer)
    kept, kept_raw = issue_api_token(user=buyer)

    response = staff_client.post(
        "/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}
    )

    assert response.status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert ApiToken.objects.get(pk=kept.pk).revoked_at is None
    staff_client.logout()
    assert staff_client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    assert staff_client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {kept_raw}").status_code == 200


# --- seller tools


def test_admins_see_auto_replies_and_away_periods_without_changing_them(staff_client, seller):
    from inbox.services import save_auto_reply
    from marketplace.accounts.selectors import local_today
    from marketplace.accounts.services import set_away

    save_auto_reply(user=seller, body="Thanks for writing, back soon!", enabled=True)
    set_away(user=seller, starts_on=local_today(seller), ends_on=local_today(seller), message="Dentist")

    auto_replies = staff_client.get("/admin/inbox/autoreply/").content.decode()
    away = staff_client.get("/admin/accounts/awayperiod/").content.decode()

    assert "Thanks for writing, back soon!" in auto_replies
    assert "Dentist" in away
    assert staff_client.get("/admin/accounts/awayperiod/add/").status_code == 403
    assert staff_client.get("/admin/inbox/message/?is_automatic__exact=1").status_code == 200
