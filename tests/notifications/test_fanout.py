"""The fan-out of notifications to email (and the bookkeeping around it): preferences per
channel, one email per recipient per batch, exactly once whatever happens to the tasks (dedupe
key, claimed deliveries, a worker killed mid-way, the sweep), the digest of unread messages,
and what the email says, with an unsubscribe link that works.

Celery runs eagerly in tests (no CELERY_BROKER_URL), so a task queued after commit runs when
the test executes the on-commit callbacks; `countdown` is ignored by eager tasks, which is why
the digest tests record the queued digest and run it themselves "after the delay"."""

from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.core import mail
from django.db import transaction
from django.utils import timezone

from inbox.services import mark_read, send_message, start_conversation
from notifications import selectors, services
from notifications.emails import unsubscribe_token
from notifications.models import Channel, Delivery, Kind, Notification
from notifications.tasks import message_digest_task
from outbox.models import Entry
from tests.helpers import listen, logged_events, received

SITE = "https://inbox.example.test"


@pytest.fixture(autouse=True)
def site(settings, channel_layer):
    """Known SITE_URL for the links; the in-memory channel layer, so live pushes can be heard."""
    settings.SITE_URL = SITE
    settings.NOTIFICATION_SWEEP_AFTER_SECONDS = 120
    return settings


def tell(user, *, key: str, kind: str = Kind.ORDER_DELIVERED, title: str = "", body: str = "", url: str = ""):
    """notify() as a service calls it: inside the transaction that makes the thing happen."""
    with transaction.atomic():
        return services.notify(
            recipient=user,
            kind=kind,
            title=title or f"Update {key}",
            body=body or f"Details of {key}",
            url=url or f"/orders/{key}/",
            dedupe_key=key,
        )


def deliveries(notification, channel=Channel.EMAIL) -> list[tuple[str, str]]:
    return list(
        Delivery.objects.filter(notification=notification, channel=channel).values_list("status", "detail")
    )


def emails_to(user) -> list:
    return [m for m in mail.outbox if m.to == [user.email]]


def html_of(message) -> str:
    [(content, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return content


# --- preferences, per channel --------------------------------------------------------------------


def test_email_off_for_a_kind_sends_no_email_for_it(buyer, django_capture_on_commit_callbacks):
    services.set_preferences(user=buyer, changes={Kind.ORDER_DELIVERED: {Channel.EMAIL: False}})
    with django_capture_on_commit_callbacks(execute=True):
        off = tell(buyer, key="delivered", kind=Kind.ORDER_DELIVERED)
        on = tell(buyer, key="completed", kind=Kind.ORDER_COMPLETED, title="Order completed")

    assert [m.subject for m in mail.outbox] == ["Order completed"]
    assert deliveries(off) == []  # never claimed: the channel is off, nothing to send
    assert deliveries(on) == [(Delivery.Status.SENT, "")]
    off.refresh_from_db()
    assert off.fanned_out_at is not None  # served (there was nothing to serve), not swept again
    # Email off does not touch the bell.
    assert off.in_app is True
    assert selectors.unread_count(user=buyer) == 2


def test_default_off_kind_sends_no_email(seller, django_capture_on_commit_callbacks):
    # DEFAULT_OFF: moderation notices about one's own message are not emailed unless asked for.
    with django_capture_on_commit_callbacks(execute=True):
        held = tell(seller, key="held", kind=Kind.MESSAGE_HELD)
    assert mail.outbox == []
    assert deliveries(held) == []
    services.set_preferences(user=seller, changes={Kind.MESSAGE_HELD: {Channel.EMAIL: True}})
    with django_capture_on_commit_callbacks(execute=True):
        tell(seller, key="held-again", kind=Kind.MESSAGE_HELD, title="Held again")
    assert [m.subject for m in mail.outbox] == ["Held again"]


def test_in_app_off_keeps_it_out_of_the_bell(buyer, channel_layer, django_capture_on_commit_callbacks):
    services.set_preferences(user=buyer, changes={Kind.OFFER_RECEIVED: {Channel.IN_APP: False}})
    tab = listen(channel_layer, buyer)
    with django_capture_on_commit_callbacks(execute=True):
        hidden = tell(buyer, key="offer", kind=Kind.OFFER_RECEIVED, title="An offer")
    assert hidden.in_app is False
    assert selectors.unread_count(user=buyer) == 0
    assert selectors.notifications_page(user=buyer).items == []
    assert logged_events(buyer, event_type="notification.created") == []
    assert [e for e in received(channel_layer, tab) if e["type"] == "notification.created"] == []
    # The other channels still follow their own preference: the email went out.
    assert [m.subject for m in mail.outbox] == ["An offer"]

    # The same user with in-app on for another kind: in the bell, logged and pushed live.
    with django_capture_on_commit_callbacks(execute=True):
        shown = tell(buyer, key="accepted", kind=Kind.OFFER_ACCEPTED)
    assert selectors.unread_count(user=buyer) == 1
    assert [n.pk for n in selectors.notifications_page(user=buyer).items] == [shown.pk]
    [event] = logged_events(buyer, event_type="notification.created")
    assert event["notification"]["id"] == shown.pk
    assert event["unread_count"] == 1
    live = [e for e in received(channel_layer, tab) if e["type"] == "notification.created"]
    assert [e["notification"]["id"] for e in live] == [shown.pk]


# --- batching ------------------------------------------------------------------------------------


def test_one_email_per_recipient_for_a_batch(buyer, seller):
    # Created without running the after-commit fan-out: then served together, as the sweep does.
    mine = [tell(buyer, key=f"b{i}", title=f"Buyer update {i}") for i in range(3)]
    theirs = tell(seller, key="s0", title="Seller update")

    services.fan_out(notification_ids=[n.pk for n in [*mine, theirs]])

    assert len(mail.outbox) == 2
    [to_buyer] = emails_to(buyer)
    [to_seller] = emails_to(seller)
    assert to_buyer.subject == "3 updates from your inbox"
    for i in range(3):
        assert f"Buyer update {i}" in to_buyer.body
        assert f"{SITE}/orders/b{i}/" in to_buyer.body
    assert "Seller update" not in to_buyer.body
    assert to_seller.subject == "Seller update"
    for notification in [*mine, theirs]:
        assert deliveries(notification) == [(Delivery.Status.SENT, "")]
    assert Notification.objects.filter(fanned_out_at__isnull=True).count() == 0


# --- exactly once --------------------------------------------------------------------------------


def test_notify_twice_with_the_same_key_stores_one(buyer, seller, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = tell(buyer, key="order:7:delivered:1")
        again = tell(buyer, key="order:7:delivered:1", title="Something else")
    assert first is not None
    assert again is None
    assert Notification.objects.filter(recipient=buyer).count() == 1
    assert len(logged_events(buyer, event_type="notification.created")) == 1
    assert len(mail.outbox) == 1
    # The key is per recipient: someone else is told about the same event separately.
    assert tell(seller, key="order:7:delivered:1") is not None


def test_fan_out_run_twice_sends_one_email(buyer):
    notification = tell(buyer, key="twice")
    services.fan_out(notification_ids=[notification.pk])
    services.fan_out(notification_ids=[notification.pk])
    assert len(mail.outbox) == 1
    # Even when the second run does not know the first one finished (fanned_out_at unset, as
    # after a redelivered task), the claimed delivery keeps it from sending again.
    Notification.objects.filter(pk=notification.pk).update(fanned_out_at=None)
    services.fan_out(notification_ids=[notification.pk])
    assert len(mail.outbox) == 1
    assert deliveries(notification) == [(Delivery.Status.SENT, "")]


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing in the fan-out catches it."""


def test_worker_killed_mid_task_sends_nothing_twice(buyer, seller):
    lost = tell(buyer, key="lost")
    other = tell(seller, key="other")

    # The worker dies inside the email send of the first recipient: its delivery is claimed,
    # the batch is never marked fanned out, and the broker redelivers the task (acks_late).
    with (
        mock.patch("notifications.emails.EmailMultiAlternatives.send", side_effect=WorkerKilled),
        pytest.raises(WorkerKilled),
    ):
        services.fan_out(notification_ids=[lost.pk, other.pk])
    assert deliveries(lost) == [(Delivery.Status.CLAIMED, "")]
    assert Notification.objects.filter(pk__in=[lost.pk, other.pk], fanned_out_at__isnull=True).count() == 2

    services.fan_out(notification_ids=[lost.pk, other.pk])  # the redelivered task
    # The claimed one is not sent again (at most once: it may or may not have left before the
    # crash); the one never claimed is sent now.
    assert [m.to for m in mail.outbox] == [[seller.email]]
    assert deliveries(lost) == [(Delivery.Status.CLAIMED, "")]
    assert deliveries(other) == [(Delivery.Status.SENT, "")]

    # A crash after sending but before fanned_out_at was written: run it all once more.
    Notification.objects.filter(pk__in=[lost.pk, other.pk]).update(fanned_out_at=None)
    services.fan_out(notification_ids=[lost.pk, other.pk])
    assert len(mail.outbox) == 1
    assert Notification.objects.filter(pk__in=[lost.pk, other.pk], fanned_out_at__isnull=True).count() == 0


def test_a_delivery_another_run_is_sending_is_not_sent_again(buyer):
    # A claim younger than the lease: its run may be sending right now.
    notification = tell(buyer, key="claimed")
    Delivery.objects.create(notification=notification, channel=Channel.EMAIL, status=Delivery.Status.CLAIMED)
    services.fan_out(notification_ids=[notification.pk])
    assert mail.outbox == []
    notification.refresh_from_db()
    assert notification.fanned_out_at is not None


def test_a_claim_abandoned_by_a_dead_worker_is_sent_once_by_the_sweep(
    buyer, django_capture_on_commit_callbacks
):
    # The worker claimed the email, then died before sending; its task was run again at once
    # (reject on worker lost) and left the claim alone, as it might still be sending.
    notification = tell(buyer, key="abandoned", title="Abandoned")
    Delivery.objects.create(notification=notification, channel=Channel.EMAIL, status=Delivery.Status.CLAIMED)
    services.fan_out(notification_ids=[notification.pk])
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        assert services.sweep() == 0  # too young to be called abandoned

    lease = timedelta(seconds=settings.NOTIFICATION_CLAIM_LEASE_SECONDS + 1)
    Delivery.objects.filter(notification=notification).update(created_at=timezone.now() - lease)
    Notification.objects.filter(pk=notification.pk).update(created_at=timezone.now() - lease)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.sweep() == 1

    assert [m.subject for m in mail.outbox] == ["Abandoned"]
    assert deliveries(notification) == [(Delivery.Status.SENT, "")]
    with django_capture_on_commit_callbacks(execute=True):
        assert services.sweep() == 0
    assert len(mail.outbox) == 1


# --- the sweep -----------------------------------------------------------------------------------


def test_sweep_requeues_what_never_fanned_out(buyer, seller, django_capture_on_commit_callbacks):
    # The fan-out task was queued and then lost (Redis restarted empty): nothing is left in the
    # outbox, and the notification was never fanned out.
    stranded = tell(buyer, key="stranded", title="Stranded")
    Entry.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        served = tell(seller, key="served", title="Served")
    recent = tell(seller, key="recent", title="Recent")  # queued, but too young to sweep
    Entry.objects.all().delete()  # (its task is on the broker: not ours to publish any more)
    assert [m.subject for m in mail.outbox] == ["Served"]
    old = timezone.now() - timedelta(seconds=settings.NOTIFICATION_SWEEP_AFTER_SECONDS + 10)
    Notification.objects.filter(pk__in=[stranded.pk, served.pk]).update(created_at=old)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert services.sweep() == 1

    assert [(m.subject, m.to) for m in mail.outbox] == [("Stranded", [buyer.email])]
    stranded.refresh_from_db()
    recent.refresh_from_db()
    assert stranded.fanned_out_at is not None
    assert recent.fanned_out_at is None
    with django_capture_on_commit_callbacks(execute=True):
        assert services.sweep() == 0  # and nothing is re-queued twice
    assert len(mail.outbox) == 1


# --- the digest of unread messages ---------------------------------------------------------------


def new_message_notification(message) -> Notification:
    """The seller's notification about `message`: created by the send itself when the inbox
    notifies (dedupe key `message:<id>`, docs/ARCHITECTURE.md), and here otherwise; the same
    key makes both one."""
    services.notify(
        recipient=message.conversation.user_high
        if message.sender_id == message.conversation.user_low_id
        else message.conversation.user_low,
        kind=Kind.NEW_MESSAGE,
        title="New message",
        body=message.body,
        url=f"/inbox/{message.conversation_id}/",
        dedupe_key=f"message:{message.pk}",
        message=message,
    )
    return Notification.objects.get(kind=Kind.NEW_MESSAGE, message=message)


@pytest.fixture
def two_unread(buyer, seller, settings, django_capture_on_commit_callbacks):
    """The buyer writes twice (sellers cannot start a conversation); the fan-out runs and queues
    the digests, recorded instead of run. Returns (conversation, messages, notifications, queued)."""
    settings.NOTIFICATION_EMAIL_DELAY_SECONDS = 420
    with (
        mock.patch.object(message_digest_task, "apply_async") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        conversation, first, _ = start_conversation(
            sender=buyer, recipient_username=seller.username, body="Hi, can you do a logo by Friday?"
        )
        second, _ = send_message(sender=buyer, conversation=conversation, body="Budget is about 200 euros.")
        notifications = [new_message_notification(first), new_message_notification(second)]
    return conversation, [first, second], notifications, queued


def run_queued_digests(queued) -> None:
    for call in queued.call_args_list:
        message_digest_task.apply(args=call.args[0])


def test_unread_messages_go_out_as_one_digest_after_the_delay(seller, two_unread):
    _, messages, notifications, queued = two_unread
    # Nothing at once: the email waits.
    assert mail.outbox == []
    assert queued.call_args_list  # one per fan-out run that saw a new message
    for call in queued.call_args_list:
        assert call.args[0] == [seller.pk]
        assert 410 < call.kwargs["countdown"] <= 420  # counted from when it was queued
    for notification in notifications:
        notification.refresh_from_db()
        assert notification.fanned_out_at is not None
        assert deliveries(notification) == []

    run_queued_digests(queued)

    [digest] = mail.outbox
    assert digest.to == [seller.email]
    assert digest.subject == "2 unread messages in your inbox"
    assert "You have 2 unread messages" in digest.body
    assert "You have 2 unread messages" in html_of(digest)
    for message in messages:
        assert message.body in digest.body
    for notification in notifications:
        assert deliveries(notification) == [(Delivery.Status.SENT, "")]


def test_digest_skips_what_was_read_meanwhile(seller, two_unread):
    conversation, messages, notifications, queued = two_unread
    mark_read(user=seller, conversation=conversation, up_to_message_id=messages[0].pk)

    run_queued_digests(queued)

    [digest] = mail.outbox
    assert digest.subject == "1 unread message in your inbox"
    assert messages[1].body in digest.body
    assert messages[0].body not in digest.body
    assert deliveries(notifications[0]) == [(Delivery.Status.SKIPPED, "read before the digest")]
    assert deliveries(notifications[1]) == [(Delivery.Status.SENT, "")]


def test_digest_sends_nothing_when_all_was_read(seller, two_unread):
    conversation, _, notifications, queued = two_unread
    mark_read(user=seller, conversation=conversation)

    run_queued_digests(queued)

    assert mail.outbox == []
    for notification in notifications:
        assert deliveries(notification) == [(Delivery.Status.SKIPPED, "read before the digest")]


def test_digest_honours_an_unsubscribe_made_during_the_delay(seller, two_unread):
    _, _, notifications, queued = two_unread
    # The seller follows "Stop emails about new messages" in an earlier email meanwhile.
    services.unsubscribe(user=seller, kind=Kind.NEW_MESSAGE)

    run_queued_digests(queued)

    assert mail.outbox == []
    for notification in notifications:
        assert deliveries(notification) == [(Delivery.Status.SKIPPED, "email turned off")]


# --- what the email says, and its unsubscribe link -----------------------------------------------


def test_email_content_and_escaping(buyer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        notification = tell(
            buyer,
            key="xss",
            kind=Kind.OFFER_RECEIVED,
            title='<script>alert("t")</script> Tom & Jerry',
            body="<img src=x onerror=alert(1)> 5 > 3",
            url="/inbox/12/?offer=3",
        )
    [email] = mail.outbox
    assert email.subject == '<script>alert("t")</script> Tom & Jerry'
    assert email.to == [buyer.email]
    link = f"{SITE}/inbox/12/?offer=3"
    unsubscribe = email.extra_headers["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith(f"{SITE}/notifications/unsubscribe/")

    # Plain text: the words as written (nothing HTML-escaped), the link, both unsubscribe links.
    text = email.body
    assert '<script>alert("t")</script> Tom & Jerry' in text
    assert "<img src=x onerror=alert(1)> 5 > 3" in text
    assert f"Open: {link}" in text
    assert f'Stop emails about "{notification.get_kind_display()}": {unsubscribe}' in text
    assert f"{SITE}/notifications/settings/" in text
    assert "&amp;" not in text and "&lt;" not in text

    # HTML: every user text escaped, inline styles only, nothing loaded from elsewhere.
    html = html_of(email)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt; Tom &amp; Jerry" in html
    assert "&lt;img src=x onerror=alert(1)&gt; 5 &gt; 3" in html
    assert f'href="{SITE}/inbox/12/?offer=3"' in html
    assert ">Open</a>" in html
    assert f'href="{unsubscribe}"' in html
    assert f"Stop emails about “{notification.get_kind_display()}”" in html
    assert f'href="{SITE}/notifications/settings/"' in html
    assert "<link" not in html and 'src="' not in html and "<style" not in html
    assert "@import" not in html and "url(" not in html


def test_a_stored_url_cannot_point_the_link_elsewhere(buyer):
    notification = tell(buyer, key="odd", url="@evil.example/phish")
    services.fan_out(notification_ids=[notification.pk])
    [email] = mail.outbox
    assert f"Open: {SITE}/@evil.example/phish" in email.body


def test_unsubscribe_link_turns_that_kinds_email_off(client, buyer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        tell(buyer, key="first", kind=Kind.ORDER_DELIVERED)
    [email] = mail.outbox
    path = email.extra_headers["List-Unsubscribe"].strip("<>").removeprefix(SITE)

    # GET asks and changes nothing (mail scanners follow links).
    asked = client.get(path)
    assert asked.status_code == 200
    assert selectors.channel_enabled(user=buyer, kind=Kind.ORDER_DELIVERED, channel=Channel.EMAIL)
    # POST unsubscribes from that kind's email, and only from that.
    done = client.post(path)
    assert done.status_code == 200
    assert not selectors.channel_enabled(user=buyer, kind=Kind.ORDER_DELIVERED, channel=Channel.EMAIL)
    assert selectors.channel_enabled(user=buyer, kind=Kind.ORDER_DELIVERED, channel=Channel.IN_APP)
    assert selectors.channel_enabled(user=buyer, kind=Kind.ORDER_COMPLETED, channel=Channel.EMAIL)

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        tell(buyer, key="second", kind=Kind.ORDER_DELIVERED)
        tell(buyer, key="third", kind=Kind.ORDER_COMPLETED, title="Completed")
    assert [m.subject for m in mail.outbox] == ["Completed"]


@pytest.mark.parametrize("method", ["get", "post"])
def test_tampered_unsubscribe_token_is_refused(client, buyer, method):
    token = unsubscribe_token(user=buyer, kind=Kind.ORDER_DELIVERED)
    # Another kind (or another user) under the same signature: the signature no longer matches.
    forged = token.replace(
        token.split(":")[0], unsubscribe_token(user=buyer, kind=Kind.WARNING).split(":")[0]
    )
    assert forged != token
    for bad in (forged, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), "nonsense"):
        response = getattr(client, method)(f"/notifications/unsubscribe/{bad}/")
        assert response.status_code == 400
    assert selectors.preferences(user=buyer)[Kind.ORDER_DELIVERED][Channel.EMAIL] is True
    assert selectors.preferences(user=buyer)[Kind.WARNING][Channel.EMAIL] is True


def test_a_burst_for_one_recipient_goes_out_as_one_email_whichever_task_runs_first(buyer, seller):
    # Two services each notify in their own transaction; their fan-out tasks run later.
    first = tell(buyer, key="burst-1", title="Order delivered")
    second = tell(buyer, key="burst-2", title="Review received")
    others = tell(seller, key="burst-3", title="Offer accepted")

    services.fan_out(notification_ids=[second.pk])  # the later task happens to run first
    services.fan_out(notification_ids=[first.pk])  # finds nothing left to send

    [email] = emails_to(buyer)
    assert email.subject == "2 updates from your inbox"
    assert "Order delivered" in email.body and "Review received" in email.body
    assert emails_to(seller) == []  # another recipient waits for their own task
    others.refresh_from_db()
    assert others.fanned_out_at is None
