"""Every message and edit goes through the scanners before it is stored: held messages wait for
a moderator and reach the recipient only when approved; refused ones never do."""

import logging

import pytest
from django.test import Client

from inbox import services
from inbox.models import Message
from marketplace.errors import Conflict, Forbidden
from moderation import services as moderation
from moderation.models import ModerationDecision
from moderation.scanning import Finding
from tests.factories import bearer_headers
from tests.helpers import logged_events

pytestmark = pytest.mark.django_db


def words_scanner(text, *, sender, recipient):
    """A scanner for these tests: HOLDME holds, REJECTME refuses (at their spans)."""
    findings = []
    for word, score in (("HOLDME", 0.7), ("REJECTME", 1.0)):
        start = text.find(word)
        if start >= 0:
            findings.append(Finding(word.lower(), start, start + len(word), score, f"It says {word}."))
    return findings


def broken_scanner(text, *, sender, recipient):
    raise RuntimeError("the scanner's model is missing")


@pytest.fixture(autouse=True)
def test_scanners(settings):
    settings.MODERATION_SCANNERS = ["tests.moderation.test_pipeline.words_scanner"]


@pytest.fixture
def conversation(buyer, seller):
    conversation, _message, _created = services.start_conversation(
        sender=buyer, recipient_username="seller", body="Hello, is the logo gig open?"
    )
    return conversation


def api(user):
    return Client(), bearer_headers(user)


def thread_bodies(user, conversation) -> list[str]:
    client, headers = api(user)
    items = client.get(f"/api/v1/conversations/{conversation.pk}/messages", **headers).json()["items"]
    return [m["body"] for m in reversed(items)]


def test_a_held_message_is_stored_and_shown_to_its_sender_only(buyer, seller, conversation):
    client, headers = api(seller)
    response = client.post(
        f"/api/v1/conversations/{conversation.pk}/messages",
        {"body": "Sure, HOLDME here"},
        content_type="application/json",
        **headers,
    )

    assert response.status_code == 201
    held = response.json()
    assert held["status"] == "held"
    assert held["moderation_reason"] == "It says HOLDME. A moderator will check it before it is delivered."
    assert thread_bodies(seller, conversation)[-1] == "Sure, HOLDME here"
    assert "Sure, HOLDME here" not in thread_bodies(buyer, conversation)
    assert [e["message"]["body"] for e in logged_events(buyer, event_type="message.created")] == [
        "Hello, is the logo gig open?"
    ]
    buyer_view = Client().get(f"/api/v1/conversations/{conversation.pk}", **bearer_headers(buyer)).json()
    assert buyer_view["unread_count"] == 0
    assert buyer_view["last_message"]["body"] == "Hello, is the logo gig open?"
    stored = Message.objects.get(pk=held["id"])
    assert stored.moderation_findings == [
        {"kind": "holdme", "start": 6, "end": 12, "score": 0.7, "detail": "It says HOLDME."}
    ]


def test_approving_delivers_it_as_a_normal_new_message(buyer, seller, conversation, staff_user):
    held, _ = services.send_message(sender=seller, conversation=conversation, body="Sure, HOLDME here")

    moderation.approve_message(message=held, moderator=staff_user, note="Not a leak")

    assert thread_bodies(buyer, conversation)[-1] == "Sure, HOLDME here"
    created = logged_events(buyer, event_type="message.created")[-1]
    assert (created["message"]["id"], created["message"]["status"], created["unread_count"]) == (
        held.pk,
        "visible",
        1,
    )
    assert created["message"]["moderation_reason"] is None
    assert logged_events(seller, event_type="message.updated")[-1]["message"]["status"] == "visible"
    decision = ModerationDecision.objects.get()
    assert (decision.decision, decision.moderator, decision.note) == ("approved", staff_user, "Not a leak")

    with pytest.raises(Conflict):
        moderation.approve_message(message=held, moderator=staff_user)
    assert ModerationDecision.objects.count() == 1


def test_a_late_approval_counts_as_unread_even_after_newer_messages_were_read(
    buyer, seller, conversation, staff_user
):
    held, _ = services.send_message(sender=seller, conversation=conversation, body="HOLDME please")
    services.send_message(sender=seller, conversation=conversation, body="And another thing")
    services.mark_read(user=buyer, conversation=conversation)

    moderation.approve_message(message=held, moderator=staff_user)

    buyer_view = Client().get(f"/api/v1/conversations/{conversation.pk}", **bearer_headers(buyer)).json()
    assert buyer_view["unread_count"] == 2  # the approved one and what came after it
    assert buyer_view["last_message"]["body"] == "And another thing"


def test_rejecting_tells_the_sender_why_and_the_recipient_nothing(buyer, seller, conversation, staff_user):
    held, _ = services.send_message(sender=seller, conversation=conversation, body="HOLDME call me")
    buyer_events = len(logged_events(buyer))

    moderation.reject_message(message=held, moderator=staff_user, reason="Phone numbers stay off the inbox.")

    update = logged_events(seller, event_type="message.updated")[-1]["message"]
    assert (update["status"], update["moderation_reason"]) == (
        "rejected",
        "Phone numbers stay off the inbox.",
    )
    assert len(logged_events(buyer)) == buyer_events
    assert "HOLDME call me" not in thread_bodies(buyer, conversation)


def test_a_refused_message_is_never_delivered_and_its_sender_sees_why(buyer, seller, conversation):
    message, created = services.send_message(sender=seller, conversation=conversation, body="REJECTME now")

    assert created and message.status == "rejected"
    assert message.moderation_reason == "It says REJECTME."
    assert "REJECTME now" not in thread_bodies(buyer, conversation)
    assert thread_bodies(seller, conversation)[-1] == "REJECTME now"
    assert not any(
        "REJECTME" in e["message"]["body"] for e in logged_events(buyer, event_type="message.created")
    )
    with pytest.raises(Conflict):
        moderation.approve_message(message=message, moderator=None)


def test_a_scanner_that_fails_holds_the_message_and_logs_why(settings, buyer, seller, conversation, caplog):
    settings.MODERATION_SCANNERS = [
        "tests.moderation.test_pipeline.broken_scanner",
        "tests.moderation.test_pipeline.words_scanner",
    ]
    with caplog.at_level(logging.ERROR, logger="moderation.scanning"):
        message, _ = services.send_message(sender=seller, conversation=conversation, body="An ordinary reply")

    assert message.status == "held"
    assert message.body == "An ordinary reply"  # nothing the user wrote is lost
    assert "could not check" in message.moderation_reason
    assert "broken_scanner failed" in caplog.text


def test_an_edit_is_scanned_before_it_is_stored(buyer, conversation):
    original = conversation.messages.get()

    with pytest.raises(Forbidden) as refused:
        services.edit_message(user=buyer, message=original, body="Actually HOLDME")

    assert refused.value.code == "edit_refused"
    assert "It says HOLDME" in refused.value.detail
    original.refresh_from_db()
    assert (original.body, original.edited_at) == ("Hello, is the logo gig open?", None)


def test_a_held_message_cannot_be_edited_and_the_other_side_cannot_reach_it(buyer, seller, conversation):
    held, _ = services.send_message(sender=seller, conversation=conversation, body="HOLDME")
    with pytest.raises(Conflict):
        services.edit_message(user=seller, message=held, body="Something else")
    client, headers = api(buyer)
    assert (
        client.post(
            f"/api/v1/messages/{held.pk}/translation", {}, content_type="application/json", **headers
        ).status_code
        == 404
    )
    assert client.get("/api/v1/search", {"q": "HOLDME"}, **headers).json()["items"] == []


@pytest.fixture
def staff_user(user_factory):
    user = user_factory("moderator")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def test_a_first_message_under_review_opens_no_conversation_for_the_recipient(buyer, seller):
    _conversation, held, _ = services.start_conversation(
        sender=buyer, recipient_username="seller", body="Hi! HOLDME before we start"
    )
    assert held.status == "held"

    def listed(user):
        client, headers = api(user)
        items = client.get("/api/v1/conversations", **headers).json()["items"]
        return [c["other_user"]["username"] for c in items]

    assert listed(seller) == []
    assert listed(buyer) == ["seller"]  # its sender sees it, with the message under review

    moderation.approve_message(message=held, moderator=buyer)

    assert listed(seller) == ["buyer"]
