"""Moderation over the JSON API with bearer tokens: what a held or refused message looks like to
its sender and to the recipient, and POST /api/v1/conversations/{id}/reports."""

import pytest

from inbox import services
from inbox.models import Message
from moderation import services as moderation
from moderation.models import Report
from moderation.scanners import EMAIL_DETAIL, INVITE_DETAIL
from tests.factories import bearer_headers

pytestmark = pytest.mark.django_db

FIRST = "Hello, is the logo gig open?"
HELD = "Sure! Whatsapp me if that's easier for you"  # an invitation: held for a moderator
REFUSED = "Sure! Write to sam.seller@gmail.com with the brief"  # an address: refused
HELD_REASON = INVITE_DETAIL + " A moderator will check it before it is delivered."


@pytest.fixture(autouse=True)
def contact_scanners(settings):
    """The built-in contact and off-platform scanners. The spam scanner is left out: it counts
    in the cache, and is tested on its own in test_scanners.py."""
    settings.MODERATION_SCANNERS = ["moderation.scanners.contact_details", "moderation.scanners.off_platform"]


@pytest.fixture
def conversation(buyer, seller):
    conversation, _message, _created = services.start_conversation(
        sender=buyer, recipient_username="seller", body=FIRST
    )
    return conversation


def send(client, user, conversation, body) -> dict:
    response = client.post(
        f"/api/v1/conversations/{conversation.pk}/messages",
        {"body": body},
        content_type="application/json",
        **bearer_headers(user),
    )
    assert response.status_code == 201, response.content
    return response.json()


def thread(client, user, conversation) -> list[dict]:
    """The messages `user` is shown, oldest first."""
    response = client.get(f"/api/v1/conversations/{conversation.pk}/messages", **bearer_headers(user))
    assert response.status_code == 200
    return list(reversed(response.json()["items"]))


def moderation_view(messages: list[dict]) -> list[tuple]:
    return [(m["body"], m["status"], m["moderation_reason"]) for m in messages]


# --- held and refused messages -----------------------------------------------------------------


def test_a_held_message_shows_its_status_and_reason_to_its_sender(client, seller, conversation):
    held = send(client, seller, conversation, HELD)

    assert (held["status"], held["moderation_reason"]) == ("held", HELD_REASON)
    assert moderation_view(thread(client, seller, conversation)) == [
        (FIRST, "visible", None),
        (HELD, "held", HELD_REASON),
    ]


def test_a_refused_message_shows_its_status_and_reason_to_its_sender(client, seller, conversation):
    refused = send(client, seller, conversation, REFUSED)

    assert (refused["status"], refused["moderation_reason"]) == ("rejected", EMAIL_DETAIL)
    assert moderation_view(thread(client, seller, conversation)) == [
        (FIRST, "visible", None),
        (REFUSED, "rejected", EMAIL_DETAIL),
    ]


@pytest.mark.parametrize("body", [HELD, REFUSED], ids=["held", "refused"])
def test_the_recipient_cannot_see_a_held_or_refused_message_at_all(client, buyer, seller, conversation, body):
    visible = send(client, seller, conversation, "Yes it is! What do you have in mind?")
    hidden = send(client, seller, conversation, body)
    buyer_headers = bearer_headers(buyer)

    assert [m["id"] for m in thread(client, buyer, conversation)] == [
        conversation.messages.get(body=FIRST).pk,
        visible["id"],
    ]
    overview = client.get(f"/api/v1/conversations/{conversation.pk}", **buyer_headers).json()
    assert (overview["last_message"]["id"], overview["unread_count"]) == (visible["id"], 1)
    events = client.get("/api/v1/events", **buyer_headers).json()["items"]
    assert hidden["id"] not in [e.get("message", {}).get("id") for e in events]
    # By id it does not exist for them; the visible one does (it is just not theirs to change).
    for method in (client.patch, client.delete):
        assert (
            method(
                f"/api/v1/messages/{visible['id']}",
                {"body": "x"},
                content_type="application/json",
                **buyer_headers,
            ).json()["error"]
            == "not_your_message"
        )
        response = method(
            f"/api/v1/messages/{hidden['id']}",
            {"body": "x"},
            content_type="application/json",
            **buyer_headers,
        )
        assert (response.status_code, response.json()["error"]) == (404, "not_found")
    reported = client.post(
        f"/api/v1/conversations/{conversation.pk}/reports",
        {"reason": "off_platform", "message_id": hidden["id"]},
        content_type="application/json",
        **buyer_headers,
    )
    assert reported.status_code == 404
    assert not Report.objects.exists()


def test_once_approved_both_see_it_as_an_ordinary_message(client, buyer, seller, conversation, user_factory):
    held = send(client, seller, conversation, HELD)
    staff = user_factory("moderator")

    moderation.approve_message(message=Message.objects.get(pk=held["id"]), moderator=staff)

    for user in (seller, buyer):
        assert moderation_view(thread(client, user, conversation))[-1] == (HELD, "visible", None)


# --- reports -------------------------------------------------------------------------------------


def report(client, user, conversation, **payload):
    headers = bearer_headers(user) if user is not None else {}
    return client.post(
        f"/api/v1/conversations/{conversation.pk}/reports",
        payload,
        content_type="application/json",
        **headers,
    )


def listed(client, user, filter_name: str) -> list[int]:
    response = client.get("/api/v1/conversations", {"filter": filter_name}, **bearer_headers(user))
    assert response.status_code == 200
    return [c["id"] for c in response.json()["items"]]


def test_reporting_a_conversation_creates_an_open_report(client, buyer, seller, conversation):
    response = report(client, seller, conversation, reason="inappropriate", note="  Rude from the start ")

    assert response.status_code == 201
    created = Report.objects.get()
    assert response.json() == {
        "id": created.pk,
        "conversation_id": conversation.pk,
        "message_id": None,
        "reason": "inappropriate",
        "note": "Rude from the start",
        "status": "open",
    }
    assert (created.reporter, created.reported_user) == (seller, buyer)


def test_reporting_one_of_their_messages_names_it(client, buyer, seller, conversation):
    theirs = conversation.messages.get(sender=buyer)

    response = report(client, seller, conversation, reason="off_platform", message_id=theirs.pk)

    assert response.status_code == 201
    assert (response.json()["message_id"], response.json()["reason"]) == (theirs.pk, "off_platform")
    assert Report.objects.get().message == theirs


def test_reporting_spam_moves_it_to_the_reporters_spam_and_out_of_needs_reply(
    client, buyer, seller, conversation
):
    assert conversation.pk in listed(client, seller, "needs_reply")
    assert conversation.pk not in listed(client, seller, "spam")

    response = report(client, seller, conversation, reason="spam")

    assert response.status_code == 201
    assert conversation.pk in listed(client, seller, "spam")
    assert conversation.pk not in listed(client, seller, "needs_reply")
    assert conversation.pk not in listed(client, seller, "all")
    counts = client.get("/api/v1/conversations/counts", **bearer_headers(seller)).json()
    assert (counts["spam"], counts["needs_reply"]) == (1, 0)
    # Only the reporter's inbox changes.
    assert conversation.pk in listed(client, buyer, "all")
    assert conversation.pk not in listed(client, buyer, "spam")


def test_an_unknown_reason_is_refused_and_files_nothing(client, seller, conversation):
    response = report(client, seller, conversation, reason="rude")

    assert response.status_code == 422
    body = response.json()
    assert {"error", "detail"} <= body.keys()
    assert body["error"] == "invalid_reason"
    assert "spam" in body["detail"]  # it names the reasons one may choose
    assert not Report.objects.exists()
    assert conversation.pk in listed(client, seller, "needs_reply")


def test_someone_elses_conversation_cannot_be_reported(client, stranger, conversation):
    response = report(client, stranger, conversation, reason="spam")

    assert (response.status_code, response.json()["error"]) == (404, "not_found")
    assert not Report.objects.exists()


def test_one_cannot_report_ones_own_message(client, buyer, conversation):
    mine = conversation.messages.get(sender=buyer)

    response = report(client, buyer, conversation, reason="spam", message_id=mine.pk)

    assert (response.status_code, response.json()["error"]) == (409, "invalid_message")
    assert not Report.objects.exists()
    assert conversation.pk not in listed(client, buyer, "spam")


def test_reporting_needs_authentication(client, conversation):
    anonymous = report(client, None, conversation, reason="spam")
    bad_token = client.post(
        f"/api/v1/conversations/{conversation.pk}/reports",
        {"reason": "spam"},
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer not-a-token",
    )

    for response in (anonymous, bad_token):
        assert (response.status_code, response.json()["error"]) == (401, "unauthorized")
    assert not Report.objects.exists()
