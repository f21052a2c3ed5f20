"""PostgreSQL going away under a real daphne process (R6 of ../shared/research/reliability.md).

The server reaches the test database through a fault proxy (bench/faultproxy.py) that the test
takes down and brings back; the machine's PostgreSQL itself is never touched.
"""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection
from django.test import Client

from bench.faultproxy import FaultProxy
from inbox.models import Message
from tests.conftest import service_unavailable
from tests.factories import bearer_headers, buyer_opens_conversation
from tests.servers import shared_database_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def database_proxy(transactional_db):
    db = connection.settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        service_unavailable("the database outage test needs PostgreSQL (DATABASE_URL=postgres://…)")
    proxy = FaultProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)).start()
    yield proxy
    proxy.stop()


def test_sends_answer_503_while_the_database_is_away_and_a_retry_stores_the_message_once(
    daphne_servers, database_proxy, buyer, seller
):
    server = daphne_servers.start(database_url=database_proxy.url(shared_database_url()))
    conversation = buyer_opens_conversation(buyer, seller)
    api = httpx.Client(
        base_url=server, headers={"Authorization": bearer_headers(buyer)["HTTP_AUTHORIZATION"]}
    )
    browser = Client()
    browser.force_login(buyer)
    page = httpx.Client(base_url=server, cookies={"sessionid": browser.cookies["sessionid"].value})
    send_path = f"/api/v1/conversations/{conversation.pk}/messages"
    client_id = str(uuid.uuid4())

    def send(cid):
        started = time.monotonic()
        response = api.post(send_path, json={"body": "Are you there?", "client_id": cid}, timeout=30)
        return response, time.monotonic() - started

    assert send(str(uuid.uuid4()))[0].status_code == 201  # the server works through the proxy

    database_proxy.down()
    with ThreadPoolExecutor(3) as pool:
        sending = pool.submit(send, client_id)
        health = pool.submit(api.get, "/healthz", timeout=30)
        inbox_page = pool.submit(page.get, "/inbox/", timeout=30)
        (refused, waited), health, inbox_page = sending.result(), health.result(), inbox_page.result()

    assert refused.status_code == 503, refused.text
    assert waited < 6, f"the send hung for {waited:.1f} s"
    assert refused.json()["error"] == "service_unavailable"
    assert "try again" in refused.json()["detail"].lower()
    assert int(refused.headers["Retry-After"]) > 0
    assert health.status_code == 503
    assert health.json()["checks"]["database"]["ok"] is False
    assert health.json()["checks"]["cache"]["ok"] is True
    assert inbox_page.status_code == 503
    assert inbox_page.elapsed.total_seconds() < 6
    assert "briefly unavailable" in inbox_page.text
    assert inbox_page.headers["Retry-After"]

    database_proxy.up()
    # The client retries with the same client_id until the server answers (as after a 503).
    deadline = time.monotonic() + 10
    retried, _ = send(client_id)
    while retried.status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.3)
        retried, _ = send(client_id)
    assert retried.status_code in (200, 201), retried.text
    again, _ = send(client_id)
    assert again.status_code == 200
    assert again.json()["id"] == retried.json()["id"]
    assert Message.objects.filter(sender=buyer, client_id=client_id).count() == 1

    fresh, took = send(str(uuid.uuid4()))
    assert fresh.status_code == 201, fresh.text
    assert took < 2
    assert api.get("/healthz", timeout=10).status_code == 200
    assert page.get("/inbox/", timeout=10).status_code == 200
    # The opening message, the one before the outage, the retried one, the fresh one.
    assert Message.objects.filter(conversation=conversation).count() == 4
