"""The other person's panel over the API: what a client shows beside a conversation."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox import services
from inbox.models import Message
from tests.factories import bearer_headers, make_completed_order

pytestmark = pytest.mark.django_db


def panel(user, conversation_id):
    return Client().get(f"/api/v1/conversations/{conversation_id}/panel", **bearer_headers(user))


def test_a_buyer_sees_the_sellers_response_figures_and_their_orders_together(buyer, seller):
    order = make_completed_order(buyer, seller)
    conversation = order.conversation
    first = Message.objects.filter(conversation=conversation, sender=buyer).order_by("pk").first()
    answer = (
        Message.objects.filter(conversation=conversation, sender=seller, pk__gt=first.pk)
        .order_by("pk")
        .first()
    )
    Message.objects.filter(pk=answer.pk).update(created_at=first.created_at + timedelta(minutes=90))
    services.rebuild_obligations(seller=seller)

    response = panel(buyer, conversation.pk)

    assert response.status_code == 200
    body = response.json()
    assert body["user"]["username"] == "seller"
    assert body["languages"] == ["English"]
    assert body["local_time"].endswith("+09:00")  # the seller lives in Tokyo
    assert body["online"] is False
    assert body["top_buyer"] is None
    assert body["response"]["average_response_seconds"] == 90 * 60
    assert [o["number"] for o in body["orders"]] == [order.number]
    assert body["orders"][0]["status"] == "completed"


def test_a_seller_sees_whether_the_buyer_is_a_top_buyer(settings, buyer, seller):
    settings.TOP_BUYER_MIN_COMPLETED_ORDERS = 1
    settings.TOP_BUYER_MIN_SPEND = 10
    order = make_completed_order(buyer, seller)

    body = panel(seller, order.conversation_id).json()

    assert body["response"] is None
    assert body["top_buyer"] == {"is_top_buyer": True, "completed_orders": 1, "spent": "50.00"}
    assert body["member_since"][:10] == timezone.now().date().isoformat()


def test_someone_elses_conversation_has_no_panel(buyer, seller, stranger):
    conversation, _message, _ = services.start_conversation(
        sender=buyer, recipient_username="seller", body="Hi"
    )

    response = panel(stranger, conversation.pk)

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert Client().get(f"/api/v1/conversations/{conversation.pk}/panel").status_code == 401


def test_the_panel_costs_the_same_queries_with_1_or_5_orders(buyer, seller):
    order = make_completed_order(buyer, seller)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert panel(buyer, order.conversation_id).status_code == 200
        return len(queries)

    one = count()
    for _ in range(4):
        make_completed_order(buyer, seller)
    assert count() == one
