"""orders.tasks on a real Celery worker: what beat sends every minute expires offers."""

from datetime import timedelta

import pytest
from celery import Celery
from django.conf import settings
from django.utils import timezone

from inbox.models import Message
from inbox.services import get_or_create_conversation
from orders import services
from orders.models import CustomOffer
from tests import test_background_services as background

celery_worker_on_redis = background.celery_worker_on_redis  # a worker process on a Redis broker


@pytest.mark.needs_redis
def test_a_worker_runs_the_scheduled_expiry_task_by_its_name(celery_worker_on_redis, buyer, seller):
    broker_url, log_path = celery_worker_on_redis
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    due = services.create_offer(
        seller=seller, conversation=conversation, description="A logo", price=100, delivery_days=3
    )
    later = services.create_offer(
        seller=seller, conversation=conversation, description="A banner", price=100, delivery_days=3
    )
    CustomOffer.objects.filter(pk=due.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    # What beat does: send the scheduled task, by name, through the broker.
    sender = Celery(broker=broker_url)
    try:
        sender.send_task(settings.CELERY_BEAT_SCHEDULE["expire-offers"]["task"])
    finally:
        sender.close()

    background.wait_for(
        lambda: CustomOffer.objects.filter(pk=due.pk, status="expired").exists(),
        timeout=30,
        what=f"the worker to expire the offer; its log:\n{log_path.read_text()}",
    )
    assert Message.objects.get(pk=due.message_id).card["status"] == "expired"
    assert CustomOffer.objects.get(pk=later.pk).status == "pending"
    assert "orders.expire_offers" in log_path.read_text()
