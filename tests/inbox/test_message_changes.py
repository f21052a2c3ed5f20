"""Replies, edits and deletions within the window, and drafts kept on the server."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from inbox import services
from inbox.models import Message, MessageRevision
from tests.factories import bearer_headers
from tests.helpers import logged_events

pytestmark = pytest.mark.django_db


def api(user):
    client = Client()
    headers = bearer_headers(user)

    def call(method, path, payload=None):
        kwargs = {"content_type": "application/json"} if payload is not None else {}
        response = (
            getattr(client, method)(path, payload, **kwargs, **headers)
            if payload is not None
            else getattr(client, method)(path, **headers)
        )
        assert response.status_code < 500, response.content
        return response

    return call


@pytest.fixture
def conversation(buyer, seller):
    conversation, _message, _created = services.start_conversation(
        sender=buyer, recipient_username="seller", body="Can you do a logo by Friday?"
    )
    return conversation


def first_message(conversation) -> Message:
    return conversation.messages.order_by("id").first()


def age(message: Message, minutes: float) -> None:
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))


# --- replies --------------------------------------------------------------------------------


def test_a_reply_carries_a_quote_of_what_it_answers(buyer, seller, conversation):
    question = first_message(conversation)
    response = api(seller)(
        "post",
        f"/api/v1/conversations/{conversation.pk}/messages",
        {"body": "Yes, Friday works.", "reply_to": question.pk},
    )
    assert response.status_code == 201
    reply = response.json()
    assert reply["reply_to"] == {
        "id": question.pk,
        "sender": "buyer",
        "excerpt": "Can you do a logo by Friday?",
        "deleted": False,
    }
    live = logged_events(buyer, event_type="message.created")[-1]["message"]
    assert live["reply_to"]["id"] == question.pk
    listed = api(buyer)("get", f"/api/v1/conversations/{conversation.pk}/messages").json()["items"][0]
    assert listed["reply_to"]["excerpt"] == "Can you do a logo by Friday?"


def test_a_reply_to_a_message_of_another_conversation_is_refused(buyer, seller, stranger, conversation):
    other, _m, _c = services.start_conversation(
        sender=stranger, recipient_username="seller", body="Elsewhere"
    )
    elsewhere = first_message(other)
    response = api(seller)(
        "post", f"/api/v1/conversations/{conversation.pk}/messages", {"body": "Hi", "reply_to": elsewhere.pk}
    )
    assert (response.status_code, response.json()["error"]) == (404, "invalid_reply_to")
    assert conversation.messages.count() == 1


def test_a_long_quote_is_cut_and_a_deleted_one_is_empty(buyer, seller, conversation):
    long_one, _ = services.send_message(sender=buyer, conversation=conversation, body="word " * 100)
    reply, _ = services.send_message(
        sender=seller, conversation=conversation, body="ok", reply_to_id=long_one.pk
    )
    reply.refresh_from_db()
    quote = api(seller)("get", f"/api/v1/conversations/{conversation.pk}/messages").json()["items"][0][
        "reply_to"
    ]
    assert len(quote["excerpt"]) == 140 and quote["excerpt"].endswith("…")

    services.delete_message(user=buyer, message=long_one)
    quote = api(seller)("get", f"/api/v1/conversations/{conversation.pk}/messages").json()["items"][0][
        "reply_to"
    ]
    assert quote == {"id": long_one.pk, "sender": "buyer", "excerpt": "", "deleted": True}


# --- edits ----------------------------------------------------------------------------------


def test_editing_within_the_window_changes_the_text_for_everyone_and_keeps_the_old_one(
    buyer, seller, conversation
):
    message = first_message(conversation)
    age(message, 10)

    response = api(buyer)("patch", f"/api/v1/messages/{message.pk}", {"body": "Can you do a logo by Monday?"})

    assert response.status_code == 200
    edited = response.json()
    assert edited["body"] == "Can you do a logo by Monday?"
    assert edited["edited_at"] is not None
    for user in (buyer, seller):
        event = logged_events(user, event_type="message.updated")[-1]
        assert event["message"]["body"] == "Can you do a logo by Monday?"
    assert list(MessageRevision.objects.values_list("body", "change")) == [
        ("Can you do a logo by Friday?", "edit")
    ]


def test_the_window_counts_from_sending_not_from_the_last_edit(buyer, conversation):
    message = first_message(conversation)
    age(message, 14)
    assert (
        api(buyer)("patch", f"/api/v1/messages/{message.pk}", {"body": "Edited at 14 minutes"}).status_code
        == 200
    )
    age(message, 16)

    response = api(buyer)("patch", f"/api/v1/messages/{message.pk}", {"body": "Edited at 16 minutes"})

    assert response.status_code == 403
    assert response.json()["error"] == "edit_window_closed"
    assert "15 minutes" in response.json()["detail"]
    message.refresh_from_db()
    assert message.body == "Edited at 14 minutes"


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [("seller", 403, "not_your_message"), ("stranger", 404, "not_found")],
)
def test_only_the_sender_edits_or_deletes(buyer, seller, stranger, conversation, who, status, code):
    message = first_message(conversation)
    user = {"seller": seller, "stranger": stranger}[who]
    for method, payload in (("patch", {"body": "Mine now"}), ("delete", None)):
        response = api(user)(method, f"/api/v1/messages/{message.pk}", payload)
        assert (response.status_code, response.json()["error"]) == (status, code)
    message.refresh_from_db()
    assert (message.body, message.deleted_at) == ("Can you do a logo by Friday?", None)


def test_an_edit_is_validated_like_a_message(buyer, conversation):
    message = first_message(conversation)
    for body in ("", "   ", "x" * 5001):
        assert api(buyer)("patch", f"/api/v1/messages/{message.pk}", {"body": body}).status_code == 422
    assert not MessageRevision.objects.exists()


def test_unknown_or_huge_message_ids_are_not_found(buyer):
    assert api(buyer)("patch", "/api/v1/messages/999999", {"body": "x"}).status_code == 404
    assert api(buyer)("delete", f"/api/v1/messages/{10**30}").status_code == 404


# --- deletions ------------------------------------------------------------------------------


def test_deleting_leaves_a_placeholder_for_everyone_and_the_text_for_admins(buyer, seller, conversation):
    message = first_message(conversation)
    assert api(seller)("get", f"/api/v1/conversations/{conversation.pk}").json()["unread_count"] == 1

    response = api(buyer)("delete", f"/api/v1/messages/{message.pk}")

    assert response.status_code == 200
    assert (response.json()["deleted"], response.json()["body"]) == (True, "")
    seller_view = api(seller)("get", f"/api/v1/conversations/{conversation.pk}/messages").json()["items"][0]
    assert (seller_view["deleted"], seller_view["body"]) == (True, "")
    assert logged_events(seller, event_type="message.updated")[-1]["message"]["deleted"] is True
    assert api(seller)("get", f"/api/v1/conversations/{conversation.pk}").json()["unread_count"] == 0
    message.refresh_from_db()
    assert message.body == "Can you do a logo by Friday?"  # kept for disputes
    assert MessageRevision.objects.get(message=message).change == "delete"

    again = api(buyer)("patch", f"/api/v1/messages/{message.pk}", {"body": "Back?"})
    assert (again.status_code, again.json()["error"]) == (409, "message_deleted")


def test_deleting_after_the_window_is_refused(buyer, conversation):
    message = first_message(conversation)
    age(message, 15.5)
    response = api(buyer)("delete", f"/api/v1/messages/{message.pk}")
    assert (response.status_code, response.json()["error"]) == (403, "edit_window_closed")
    message.refresh_from_db()
    assert message.deleted_at is None


# --- drafts ---------------------------------------------------------------------------------


def test_a_draft_is_kept_for_my_other_devices_and_cleared_when_i_send(buyer, seller, conversation):
    call = api(buyer)
    saved = call("put", f"/api/v1/conversations/{conversation.pk}/draft", {"text": "Half a thought"})
    assert saved.json()["draft"] == "Half a thought"
    # Another device (a new token) sees it; the other person does not.
    assert api(buyer)("get", f"/api/v1/conversations/{conversation.pk}").json()["draft"] == "Half a thought"
    assert api(seller)("get", f"/api/v1/conversations/{conversation.pk}").json()["draft"] == ""

    call("post", f"/api/v1/conversations/{conversation.pk}/messages", {"body": "A whole thought"})
    assert call("get", f"/api/v1/conversations/{conversation.pk}").json()["draft"] == ""


def test_bad_drafts_are_refused_and_a_strangers_conversation_is_not_found(buyer, stranger, conversation):
    call = api(buyer)
    too_long = call("put", f"/api/v1/conversations/{conversation.pk}/draft", {"text": "x" * 5001})
    assert (too_long.status_code, too_long.json()["error"]) == (422, "draft_too_long")
    assert (
        api(stranger)("put", f"/api/v1/conversations/{conversation.pk}/draft", {"text": "hi"}).status_code
        == 404
    )
    assert call("get", f"/api/v1/conversations/{conversation.pk}").json()["draft"] == ""
