"""The same facts read the same wherever a client meets them: list or detail, event or REST."""

import uuid
from datetime import timedelta

import pytest
from django.test import Client

from inbox.models import Conversation, Event
from inbox.services import mark_read, prune_event_log, send_message, start_conversation
from tests.factories import bearer_headers

pytestmark = pytest.mark.django_db


def api_get(user, path, **params):
    return Client().get(path, params, **bearer_headers(user))


def test_the_list_tells_how_far_the_other_person_read_like_the_detail_does(buyer, seller):
    conversation, first, _ = start_conversation(sender=buyer, recipient_username="seller", body="Hi")
    mark_read(user=seller, conversation=conversation)

    listed = api_get(buyer, "/api/v1/conversations").json()["items"][0]
    detail = api_get(buyer, f"/api/v1/conversations/{conversation.pk}").json()
    assert listed["other_last_read_message_id"] == detail["other_last_read_message_id"] == first.pk


def test_event_and_rest_show_a_message_identically(buyer, seller):
    conversation, _message, _ = start_conversation(
        sender=buyer, recipient_username="seller", body="Same everywhere"
    )
    event = Event.objects.get(user=seller, type="message.created").as_dict()
    rest = api_get(seller, f"/api/v1/conversations/{conversation.pk}/messages").json()["items"][0]
    assert event["message"] == rest
    assert rest["created_at"].endswith("Z")


def test_each_participant_reads_their_own_unread_count_in_a_read_event(buyer, seller):
    conversation, _, _ = start_conversation(sender=buyer, recipient_username="seller", body="One")
    two, _ = send_message(sender=buyer, conversation=conversation, body="Two")
    send_message(sender=buyer, conversation=conversation, body="Three")  # seller: 3 unread

    mark_read(user=seller, conversation=conversation, up_to_message_id=two.pk)

    seller_copy = Event.objects.filter(user=seller, type="conversation.read").get().payload
    buyer_copy = Event.objects.filter(user=buyer, type="conversation.read").get().payload
    assert seller_copy["unread_count"] == 1  # "Three" still waits for the seller
    assert buyer_copy["unread_count"] == 0  # the buyer has nothing unread
    assert seller_copy["last_read_message_id"] == buyer_copy["last_read_message_id"] == two.pk


def test_a_client_id_reused_for_another_recipient_creates_no_conversation(buyer, seller, stranger):
    client_id = str(uuid.uuid4())
    client = Client()
    first = client.post(
        "/api/v1/conversations",
        {"recipient": "seller", "body": "Hello", "client_id": client_id},
        content_type="application/json",
        **bearer_headers(buyer),
    )
    assert first.status_code == 201
    again = client.post(
        "/api/v1/conversations",
        {"recipient": "stranger", "body": "Hello", "client_id": client_id},
        content_type="application/json",
        **bearer_headers(buyer),
    )
    assert again.status_code == 409
    assert again.json()["error"] == "client_id_reused"
    assert Conversation.objects.count() == 1
    assert not stranger.memberships.exists()


@pytest.mark.usefixtures("everyone_online")
def test_a_pruned_cursor_answers_410_with_the_cursor_to_resume_from(buyer, seller):
    conversation, _, _ = start_conversation(sender=buyer, recipient_username="seller", body="Old news")
    prune_event_log(older_than=timedelta(0))
    send_message(sender=buyer, conversation=conversation, body="Fresh")

    response = api_get(seller, "/api/v1/events", since=0)
    assert response.status_code == 410
    body = response.json()
    assert body["error"] == "resync_required"
    assert body["cursor"] == 2
    resumed = api_get(seller, "/api/v1/events", since=body["cursor"]).json()
    assert resumed == {"items": [], "next_cursor": None}


def test_a_bad_bearer_token_is_refused_even_with_a_valid_session(buyer):
    client = Client()
    client.force_login(buyer)
    assert client.get("/api/v1/me").status_code == 200
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer not-a-real-token")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
