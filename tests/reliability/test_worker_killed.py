"""A Celery worker killed with SIGKILL in the middle of sending a notification email: every
notification still reaches its recipient exactly once (late acks + reject on worker lost put
the task back at once; the claim the dead worker left is taken over after its lease)."""

import email
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import redis
from django.db import transaction

from notifications import services as notifications
from notifications.models import Delivery, Kind, Notification
from outbox import services as outbox
from outbox.models import Entry
from tests.servers import PROJECT_DIR, start_celery_worker, stop_process, worker_environment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.needs_redis]

LEASE_SECONDS = 3


class MailServer:
    """Just enough SMTP to take mail: records the subject of each message it accepted (answered
    250 after DATA). `hold_message(n)` leaves the n-th message's DATA unanswered — its sender
    is mid-send — until `release()`, then drops the connection: that message was not accepted."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[str] = []
        self.received = 0
        self.hold_at: int | None = None
        self.holding, self.released = threading.Event(), threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def hold_message(self, number: int) -> None:
        self.hold_at = number

    def release(self) -> None:
        self.released.set()

    def _serve(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(connection,), daemon=True).start()

    def _session(self, connection):
        with connection, connection.makefile("rb") as lines:
            connection.sendall(b"220 test ESMTP\r\n")
            for line in lines:
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                    connection.sendall(b"250 OK\r\n")
                elif verb == b"DATA":
                    connection.sendall(b"354 End with .\r\n")
                    body = []
                    for data_line in lines:
                        if data_line == b".\r\n":
                            break
                        body.append(data_line)
                    self.received += 1
                    if self.received == self.hold_at:
                        self.holding.set()
                        self.released.wait(60)
                        return
                    self.accepted.append(email.message_from_bytes(b"".join(body))["Subject"])
                    connection.sendall(b"250 queued\r\n")
                elif verb == b"QUIT":
                    connection.sendall(b"221 bye\r\n")
                    return
                else:
                    connection.sendall(b"502 not here\r\n")

    def wait_for(self, count: int, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.accepted) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return list(self.accepted)


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def broker_url(redis_url):
    """A Redis database of its own for the queue, emptied before and after."""
    url = redis_url.rsplit("/", 1)[0] + "/15"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


def test_a_worker_killed_mid_send_still_delivers_every_notification_once(
    user_factory, broker_url, redis_url, monkeypatch, tmp_path
):
    mail = MailServer()
    mail.hold_message(2)  # the second email: its worker dies while sending it
    recipients = [user_factory(f"recipient{number}") for number in range(6)]
    # The web process writes the notifications and dies before publishing their fan-out tasks:
    # they wait in the outbox for the relay.
    monkeypatch.setattr(outbox, "relay", lambda **kwargs: 0)
    titles = []
    for number, recipient in enumerate(recipients):
        titles.append(f"Delivery number {number}")
        with transaction.atomic():
            notifications.notify(
                recipient=recipient,
                kind=Kind.ORDER_DELIVERED,
                title=titles[-1],
                url="/orders/",
                dedupe_key=f"delivery:{number}",
            )
    env = worker_environment(
        broker_url,
        REDIS_URL=redis_url,
        EMAIL_URL=f"smtp://127.0.0.1:{mail.port}",
        NOTIFICATION_BATCH_SECONDS="0",
        NOTIFICATION_SWEEP_AFTER_SECONDS="1",
        NOTIFICATION_CLAIM_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    log_path = tmp_path / "worker.log"
    worker = start_celery_worker(env, log_path, pool="prefork")  # prefork: a child to kill
    try:
        subprocess.run(
            [sys.executable, "manage.py", "relay_outbox", "--once"],
            cwd=PROJECT_DIR, env=env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        assert not Entry.objects.exists()  # six fan-out tasks are on the queue

        assert mail.holding.wait(60), log_path.read_text()
        children = subprocess.run(
            ["pgrep", "-P", str(worker.pid)], capture_output=True, text=True, check=True
        ).stdout.split()
        for child in children:
            os.kill(int(child), signal.SIGKILL)
        mail.release()

        # The other five go out, the killed task among them is run again by a new child...
        assert len(mail.wait_for(5, timeout=60)) == 5, log_path.read_text()
        # ...and the email it was sending, after its claim's lease, by the sweep (beat's task).
        time.sleep(LEASE_SECONDS + 1)
        subprocess.run(
            [sys.executable, "-m", "celery", "-A", "marketplace", "call", "notifications.sweep"],
            cwd=PROJECT_DIR, env=env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        mail.wait_for(6, timeout=60)
        time.sleep(1)  # anything sent twice would arrive now
    finally:
        stop_process(worker)

    assert "WorkerLostError" in log_path.read_text() or "SIGKILL" in log_path.read_text()
    assert sorted(mail.accepted) == sorted(titles)  # each exactly once
    statuses = Delivery.objects.filter(channel="email").values_list("status", flat=True)
    assert sorted(statuses) == [Delivery.Status.SENT] * 6
    assert Notification.objects.filter(fanned_out_at__isnull=True).count() == 0
    assert not Entry.objects.exists()
