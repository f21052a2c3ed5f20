"""The seller tools as a seller and buyers use them in the browser: the dashboard, Set
availability (and what buyers see of it), the auto-reply form and quick responses, with the
composer's picker data."""

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from inbox import services
from inbox.models import AutoReply, Message, QuickResponse
from marketplace.accounts.models import AwayPeriod
from marketplace.accounts.selectors import local_today
from marketplace.accounts.services import set_away
from orders import services as orders
from tests.factories import buyer_opens_conversation

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def first_message_at(buyer, seller, ago: timedelta, body="Hi, is the logo gig open?"):
    conversation = buyer_opens_conversation(buyer, seller, body)
    message = Message.objects.filter(conversation=conversation).latest("pk")
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - ago)
    services.record_delivered_message(message_id=message.pk)
    return conversation


def seller_answers(seller, conversation, ago: timedelta):
    message, _ = services.send_message(sender=seller, conversation=conversation, body="Yes, it is!")
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - ago)
    services.record_delivered_message(message_id=message.pk)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- the dashboard ---------------------------------------------------------------------------


def test_the_dashboard_shows_both_rates_the_average_the_trend_and_who_waits_most_urgently(
    seller, user_factory
):
    answered_fast = first_message_at(user_factory("ann", display_name="Ann"), seller, timedelta(days=3))
    seller_answers(seller, answered_fast, timedelta(days=3) - timedelta(hours=2))
    answered_late = first_message_at(user_factory("bob", display_name="Bob"), seller, timedelta(days=5))
    seller_answers(seller, answered_late, timedelta(days=3))  # 48 hours later
    first_message_at(user_factory("cleo", display_name="Cleo"), seller, timedelta(hours=20))  # 4 h left
    first_message_at(user_factory("dan", display_name="Dan"), seller, timedelta(hours=2))  # 22 h left
    first_message_at(user_factory("eve", display_name="Eve"), seller, timedelta(hours=30))  # 6 h late

    response = client_for(seller).get("/seller/")

    assert response.status_code == 200
    page = text_of(response.content.decode())
    # 3 decided (Ann on time; Bob late; Eve unanswered past 24 h): 1 of 3 → 33%.
    assert "Inbox response rate 33%" in page
    assert "Order response rate \N{EN DASH}" in page
    assert "Average response time 25 hours" in page  # (2 h + 48 h) / 2
    awaiting = re.search(
        r'<ol class="awaiting-list" id="awaiting">(.*?)</ol>', response.content.decode(), re.S
    )
    names = re.findall(r">(Ann|Bob|Cleo|Dan|Eve)</a>", awaiting.group(1))
    assert names == ["Cleo", "Dan", "Eve"]  # the least time left first, the late one after
    assert re.search(r"Cleo.*?3 h 5\d min left", text_of(awaiting.group(1)))
    assert re.search(r"Eve.*?6 h [0-2] min late", text_of(awaiting.group(1)))
    svg = re.search(r"<svg class=\"trend-chart\".*?</svg>", response.content.decode(), re.S).group(0)
    assert 'class="trend-line trend-inbox"' in svg
    assert "Inbox response rate: 33% today" in page


def test_a_new_seller_sees_an_empty_dashboard_without_errors(seller):
    response = client_for(seller).get("/seller/")

    assert response.status_code == 200
    page = text_of(response.content.decode())
    assert "Inbox response rate \N{EN DASH}" in page
    assert "Every first message has an answer" in page
    assert "trend-line" not in response.content.decode()  # nothing to draw yet


def test_buyers_and_visitors_do_not_get_the_seller_tools(buyer):
    assert client_for(buyer).get("/seller/").status_code == 403
    assert (
        "Switch your profile to seller" in client_for(buyer).get("/seller/quick-responses/").content.decode()
    )
    assert Client().get("/seller/").status_code == 302


def test_the_seller_menu_links_to_the_dashboard(seller, buyer):
    assert 'href="/seller/"' in client_for(seller).get("/inbox/").content.decode()
    assert 'href="/seller/"' not in client_for(buyer).get("/inbox/").content.decode()


# --- availability ----------------------------------------------------------------------------


def test_a_seller_sets_availability_and_buyers_see_it_everywhere_they_meet_them(seller, buyer):
    conversation = buyer_opens_conversation(buyer, seller)
    gig = orders.create_gig(
        seller=seller, title="A logo", description="Vector logo", price=50, delivery_days=3
    )
    today = local_today(seller)

    response = client_for(seller).post(
        "/seller/availability/",
        {
            "starts_on": today.isoformat(),
            "ends_on": (today + timedelta(days=6)).isoformat(),
            "message": "On holiday <b>until</b> Sunday.",
        },
    )

    assert response.status_code == 302
    back_on = (today + timedelta(days=6)).strftime("%A, %B %-d")
    as_buyer = client_for(buyer)
    for url in (f"/u/{seller.username}/", f"/gigs/{gig.pk}/", f"/inbox/{conversation.pk}/"):
        html = as_buyer.get(url).content.decode()
        assert f"Sam Seller is away until {back_on}." in text_of(html), url
        assert "On holiday &lt;b&gt;until&lt;/b&gt; Sunday." in html, url  # escaped
        assert "You can still leave a message" in html, url
    # Buyers can still write while the seller is away.
    services.send_message(sender=buyer, conversation=conversation, body="No rush, see you then")


def test_availability_in_the_past_or_backwards_is_refused_and_changes_nothing(seller):
    today = local_today(seller)
    client = client_for(seller)
    for starts_on, ends_on, expected in (
        (today - timedelta(days=2), today + timedelta(days=1), "starts today or later"),
        (today + timedelta(days=3), today + timedelta(days=1), "comes after the first"),
        ("next monday", today, "as dates"),
    ):
        response = client.post(
            "/seller/availability/", {"starts_on": str(starts_on), "ends_on": str(ends_on)}
        )
        assert response.status_code == 422
        assert expected in response.content.decode()
        assert f'value="{starts_on}"' in response.content.decode()  # what was typed is kept
    assert not AwayPeriod.objects.exists()


def test_back_early_ends_the_time_away_from_today(seller, buyer):
    today = local_today(seller)
    set_away(user=seller, starts_on=today, ends_on=today + timedelta(days=5))

    response = client_for(seller).post("/seller/availability/end/")

    assert response.status_code == 302
    assert "is away" not in client_for(buyer).get(f"/u/{seller.username}/").content.decode()


# --- auto-reply ------------------------------------------------------------------------------


def test_a_seller_switches_the_auto_reply_on_and_off(seller):
    client = client_for(seller)
    response = client.post("/seller/auto-reply/", {"body": "Hi {buyer_first_name}, thanks!", "enabled": "on"})
    assert response.status_code == 302
    assert AutoReply.objects.get(user=seller).enabled

    client.post("/seller/auto-reply/", {"body": "Hi {buyer_first_name}, thanks!"})

    saved = AutoReply.objects.get(user=seller)
    assert not saved.enabled and saved.body == "Hi {buyer_first_name}, thanks!"
    assert "Hi {buyer_first_name}, thanks!" in client.get("/seller/auto-reply/").content.decode()


def test_a_refused_auto_reply_keeps_the_text_and_says_why(seller):
    response = client_for(seller).post(
        "/seller/auto-reply/", {"body": "Mail me at sam@gmail.com, {buyer_nmae}", "enabled": "on"}
    )

    assert response.status_code == 422
    html = response.content.decode()
    assert "Unknown placeholder {buyer_nmae}" in html
    assert "Mail me at sam@gmail.com, {buyer_nmae}" in html
    assert not AutoReply.objects.exists()


# --- quick responses -------------------------------------------------------------------------


def test_a_seller_creates_edits_and_deletes_quick_responses_on_the_page(seller):
    client = client_for(seller)
    client.post("/seller/quick-responses/", {"title": "Thanks", "body": "Thanks {buyer_name}!"})
    saved = QuickResponse.objects.get(user=seller)
    assert "Thanks {buyer_name}!" in client.get("/seller/quick-responses/").content.decode()

    client.post(f"/seller/quick-responses/{saved.pk}/", {"title": "Thank you", "body": "Thank you!"})
    saved.refresh_from_db()
    assert (saved.title, saved.body) == ("Thank you", "Thank you!")

    client.post(f"/seller/quick-responses/{saved.pk}/delete/")
    assert not QuickResponse.objects.exists()


def test_a_bad_quick_response_is_refused_with_the_reason_and_the_text_kept(seller):
    response = client_for(seller).post("/seller/quick-responses/", {"title": "", "body": "Dear {name}"})

    assert response.status_code == 422
    assert "Give the quick response a title." in response.content.decode()
    assert "Dear {name}" in response.content.decode()


def test_another_sellers_quick_response_cannot_be_read_edited_or_deleted(seller, user_factory):
    theirs = services.create_quick_response(
        user=user_factory("rival", seller=True), title="Secret", body="Rival text"
    )
    client = client_for(seller)

    assert client.get(f"/seller/quick-responses/{theirs.pk}/").status_code == 404
    assert (
        client.post(f"/seller/quick-responses/{theirs.pk}/", {"title": "x", "body": "y"}).status_code == 404
    )
    assert client.post(f"/seller/quick-responses/{theirs.pk}/delete/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.body == "Rival text"


def test_the_composer_offers_the_sellers_quick_responses_filled_for_the_conversation(seller, buyer):
    conversation = buyer_opens_conversation(buyer, seller)
    services.create_quick_response(user=seller, title="Hi", body="Hi {buyer_first_name} </script><b>!")

    seller_page = client_for(seller).get(f"/inbox/{conversation.pk}/").content.decode()
    buyer_page = client_for(buyer).get(f"/inbox/{conversation.pk}/").content.decode()

    data = re.search(
        r'<script id="quick-responses-data" type="application/json">(.*?)</script>', seller_page, re.S
    )
    assert json.loads(data.group(1))[0]["text"] == "Hi Bella </script><b>!"
    assert "</script><b>" not in data.group(1)  # escaped inside the JSON
    assert 'id="quick-responses-button"' in seller_page
    assert "quick-responses" not in buyer_page
