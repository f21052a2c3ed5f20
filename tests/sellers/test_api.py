"""The seller tools over the JSON API, as an integration would use them: the dashboard,
availability, auto-reply and quick responses, with clear errors that change nothing."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from inbox import services
from inbox.models import AutoReply, Message, QuickResponse
from marketplace.accounts.models import AwayPeriod
from marketplace.accounts.selectors import local_today
from tests.factories import bearer_headers, buyer_opens_conversation

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(seller):
    client, headers = Client(), bearer_headers(seller)

    def call(method, path, body=None, **extra):
        kwargs = {"content_type": "application/json"} if body is not None else {}
        return getattr(client, method)(f"/api/v1{path}", body, **kwargs, **headers, **extra)

    return call


def test_the_dashboard_gives_the_figures_the_trend_and_who_waits(api, seller, buyer):
    conversation = buyer_opens_conversation(buyer, seller)
    first = Message.objects.get(conversation=conversation)
    Message.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(hours=5))
    services.record_delivered_message(message_id=first.pk)

    response = api("get", "/seller/dashboard")

    assert response.status_code == 200
    body = response.json()
    assert body["inbox_response_rate"] is None  # nothing decided yet: 19 hours are left
    assert len(body["trend"]) == 60
    assert body["trend"][-1]["day"] == local_today(seller).isoformat()
    [waiting] = body["awaiting_first_answer"]
    assert waiting["conversation_id"] == conversation.pk
    assert waiting["buyer"]["username"] == "buyer"
    assert 19 * 3600 - 120 < waiting["seconds_left"] <= 19 * 3600
    assert waiting["counted"] is True


def test_availability_is_planned_read_and_ended(api, seller):
    today = local_today(seller)
    planned = {
        "starts_on": today.isoformat(),
        "ends_on": (today + timedelta(days=3)).isoformat(),
        "message": "Fishing",
    }

    response = api("put", "/seller/availability", planned)

    assert response.status_code == 200
    assert response.json()["away_now"] == planned
    assert api("get", "/seller/availability").json()["planned"] == [planned]
    ended = api("delete", "/seller/availability").json()
    assert ended == {"away_now": None, "planned": []}


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"starts_on": "yesterday"}, 422, "invalid_input"),
        ({"starts_on": "2020-01-01"}, 422, "away_in_past"),
        ({"ends_on": "2020-01-01"}, 422, "invalid_dates"),
        ({"message": "x" * 301}, 422, "invalid_input"),
    ],
)
def test_bad_availability_is_refused_and_changes_nothing(api, seller, change, status, error):
    today = local_today(seller)
    payload = {"starts_on": today.isoformat(), "ends_on": (today + timedelta(days=3)).isoformat(), **change}

    response = api("put", "/seller/availability", payload)

    assert response.status_code == status
    assert response.json()["error"] == error and response.json()["detail"]
    assert not AwayPeriod.objects.exists()


def test_the_auto_reply_is_written_and_switched(api, seller):
    assert api("get", "/seller/auto-reply").json() == {"body": "", "enabled": False}

    response = api("put", "/seller/auto-reply", {"body": "Hi {buyer_name}!", "enabled": True})

    assert response.status_code == 200
    assert response.json() == {"body": "Hi {buyer_name}!", "enabled": True}
    refused = api("put", "/seller/auto-reply", {"body": "Call +1 415 555 0132", "enabled": True})
    assert refused.status_code == 403 and refused.json()["error"] == "text_refused"
    assert AutoReply.objects.get(user=seller).body == "Hi {buyer_name}!"


def test_quick_responses_are_created_listed_filled_edited_and_deleted(api, seller, buyer):
    conversation = buyer_opens_conversation(buyer, seller)
    created = api("post", "/seller/quick-responses", {"title": "Hi", "body": "Hi {buyer_first_name}!"})
    assert created.status_code == 201
    quick_id = created.json()["id"]

    listed = api("get", "/seller/quick-responses").json()
    filled = api("get", f"/seller/quick-responses?conversation_id={conversation.pk}").json()
    patched = api("patch", f"/seller/quick-responses/{quick_id}", {"title": "Hello"})
    deleted = api("delete", f"/seller/quick-responses/{quick_id}")

    assert listed == [{"id": quick_id, "title": "Hi", "body": "Hi {buyer_first_name}!", "text": None}]
    assert filled[0]["text"] == "Hi Bella!"
    assert patched.json()["title"] == "Hello" and patched.json()["body"] == "Hi {buyer_first_name}!"
    assert deleted.status_code == 204
    assert not QuickResponse.objects.exists()


def test_quick_responses_errors_are_clear(api, seller, user_factory, stranger):
    api("post", "/seller/quick-responses", {"title": "Hi", "body": "Hello"})
    theirs = services.create_quick_response(user=user_factory("rival", seller=True), title="X", body="Y")
    strangers_conversation = buyer_opens_conversation(stranger, user_factory("other_seller", seller=True))

    cases = [
        (api("post", "/seller/quick-responses", {"title": "hi", "body": "Again"}), 409, "title_taken"),
        (
            api("post", "/seller/quick-responses", {"title": "Yo", "body": "{nope}"}),
            422,
            "unknown_placeholder",
        ),
        (api("post", "/seller/quick-responses", {"title": "Yo"}), 422, "invalid_input"),
        (api("patch", f"/seller/quick-responses/{theirs.pk}", {"title": "Mine"}), 404, "not_found"),
        (api("delete", f"/seller/quick-responses/{theirs.pk}"), 404, "not_found"),
        (
            api("get", f"/seller/quick-responses?conversation_id={strangers_conversation.pk}"),
            404,
            "not_found",
        ),
    ]

    for response, status, error in cases:
        assert (response.status_code, response.json()["error"]) == (status, error)
        assert response.json()["detail"]
    assert QuickResponse.objects.filter(user=seller).count() == 1
    theirs.refresh_from_db()
    assert theirs.title == "X"


def test_buyers_get_a_clear_refusal(buyer):
    headers = bearer_headers(buyer)
    for method, path in (
        ("get", "/seller/dashboard"),
        ("get", "/seller/availability"),
        ("get", "/seller/auto-reply"),
        ("get", "/seller/quick-responses"),
    ):
        response = getattr(Client(), method)(f"/api/v1{path}", **headers)
        assert response.status_code == 403
        assert response.json()["error"] == "not_a_seller"


def test_the_panel_tells_a_buyer_the_seller_is_away(seller, buyer):
    from marketplace.accounts.services import set_away

    conversation = buyer_opens_conversation(buyer, seller)
    today = local_today(seller)
    set_away(user=seller, starts_on=today, ends_on=today + timedelta(days=2), message="Back Monday")

    panel = Client().get(f"/api/v1/conversations/{conversation.pk}/panel", **bearer_headers(buyer)).json()

    assert panel["away"] == {
        "starts_on": today.isoformat(),
        "ends_on": (today + timedelta(days=2)).isoformat(),
        "message": "Back Monday",
    }


def test_messages_say_when_they_were_sent_automatically(seller, buyer, django_capture_on_commit_callbacks):
    services.save_auto_reply(user=seller, body="Thanks for writing!", enabled=True)
    with django_capture_on_commit_callbacks(execute=True):
        conversation = buyer_opens_conversation(buyer, seller)

    items = (
        Client()
        .get(f"/api/v1/conversations/{conversation.pk}/messages", **bearer_headers(buyer))
        .json()["items"]
    )

    assert sorted((m["body"], m["is_automatic"]) for m in items) == [
        ("Hi, is your gig available?", False),
        ("Thanks for writing!", True),
    ]
