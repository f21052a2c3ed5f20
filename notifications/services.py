"""Every write about notifications. Services elsewhere call `notify(...)` inside their own
transaction; after commit a Celery task fans each notification out to the channels its
recipient enabled (docs/ARCHITECTURE.md, "Notifications").

Exactly once, whatever happens to the tasks: a notification is unique per (recipient,
dedupe_key); each channel's delivery is claimed (a unique row) before it is sent, so a task run
twice, or restarted after a worker died mid-way, sends nothing twice; a sweep re-queues
notifications whose fan-out never ran (the broker lost it) and those whose claim was abandoned
(the worker died between claiming and sending), which the next run takes over. The one gap left
is a worker dying between the mail server accepting a message and the row turning `sent`."""

import logging
import re
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from inbox.events import append_events
from marketplace.errors import InvalidInput, NotFound
from marketplace.patterns import SPACE
from outbox.services import enqueue_task

from . import selectors
from .models import Channel, Delivery, Kind, Notification, Preference, PushSubscription
from .payloads import notification_payload

logger = logging.getLogger(__name__)

# Kinds whose email waits a little and goes out as one digest, skipping what was read meanwhile.
DIGESTED_KINDS = {Kind.NEW_MESSAGE}


def notify(
    *, recipient, kind: str, title: str, url: str, dedupe_key: str, body: str = "", message=None
) -> Notification | None:
    """Tell `recipient` about something, once per `dedupe_key`. Call inside the transaction
    that makes the thing happen: the notification commits with it, the bell updates live, and
    the other channels are served after commit. Returns None when it already existed."""
    in_app = selectors.channel_enabled(user=recipient, kind=kind, channel=Channel.IN_APP)
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                recipient=recipient,
                kind=kind,
                title=title[:200],
                body=body[:300],
                url=url,
                dedupe_key=dedupe_key[:200],
                in_app=in_app,
                message=message,
            )
    except IntegrityError:
        return None
    if in_app:
        append_events(
            [
                (
                    recipient.pk,
                    "notification.created",
                    {
                        "notification": notification_payload(notification),
                        "unread_count": selectors.unread_count(user=recipient),
                    },
                )
            ]
        )
    # A short wait gathers a burst (an order's several steps, a busy chat) into one email.
    enqueue_task("notifications.fan_out", [notification.pk], countdown=settings.NOTIFICATION_BATCH_SECONDS)
    return notification


# --- how notifications name things (one wording for every service that notifies) --------------


def display_name(user) -> str:
    return user.profile.display_name or user.username


def excerpt(text: str, limit: int = 120) -> str:
    """One line of user text for a notification's body."""
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "\u2026"


def conversation_url(conversation_id: int, message_id: int | None = None) -> str:
    """A conversation, scrolled to one of its messages when given."""
    url = reverse("inbox:conversation", args=[conversation_id])
    return f"{url}?message={message_id}" if message_id else url


# --- reading and preferences ---------------------------------------------------------------------


def mark_read(*, user, notification_id: int) -> Notification:
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update().filter(pk=notification_id, recipient=user).first()
        )
        if notification is None:
            raise NotFound("Notification not found.")
        if notification.read_at is None:
            notification.read_at = timezone.now()
            notification.save(update_fields=["read_at"])
            _announce_read(user, [notification.pk])
    return notification


def mark_all_read(*, user) -> int:
    with transaction.atomic():
        ids = list(
            Notification.objects.filter(recipient=user, in_app=True, read_at__isnull=True).values_list(
                "pk", flat=True
            )
        )
        Notification.objects.filter(pk__in=ids).update(read_at=timezone.now())
        if ids:
            _announce_read(user, ids)
    return len(ids)


def _announce_read(user, ids: list[int]) -> None:
    append_events(
        [(user.pk, "notification.read", {"ids": ids, "unread_count": selectors.unread_count(user=user)})]
    )


def set_preferences(*, user, changes: dict) -> dict:
    """`changes`: {kind: {channel: bool}}. Unknown kinds or channels change nothing and say
    which; the answer is the whole matrix after the change."""
    if not isinstance(changes, dict):
        raise InvalidInput("Send an object of kinds, each an object of channels set to true or false.")
    rows = []
    for kind, channels in changes.items():
        if kind not in Kind.values:
            raise InvalidInput(
                f"Unknown kind {kind!r}; known: {', '.join(Kind.values)}.", code="invalid_kind"
            )
        if not isinstance(channels, dict):
            raise InvalidInput(f"{kind}: give an object of channels.", code="invalid_channel")
        for channel, enabled in channels.items():
            if channel not in Channel.values:
                raise InvalidInput(
                    f"Unknown channel {channel!r}; known: {', '.join(Channel.values)}.",
                    code="invalid_channel",
                )
            if not isinstance(enabled, bool):
                raise InvalidInput(f"{kind}.{channel} is true or false.", code="invalid_preference")
            rows.append(Preference(user=user, kind=kind, channel=channel, enabled=enabled))
    with transaction.atomic():
        Preference.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["user", "kind", "channel"],
            update_fields=["enabled"],
        )
    return selectors.preferences(user=user)


def unsubscribe(*, user, kind: str) -> None:
    """The link in an email: no more emails of this kind."""
    set_preferences(user=user, changes={kind: {Channel.EMAIL: False}})


PUSH_ENDPOINT_MAX, PUSH_P256DH_MAX, PUSH_AUTH_MAX = 500, 200, 100
# An https URL with a host name (no spaces, no NUL: PostgreSQL refuses one). The API schema
# declares this same pattern (marketplace.patterns says why it is written so).
PUSH_ENDPOINT_PATTERN = rf"^https://[A-Za-z0-9.-]+(?::[0-9]{{1,5}})?(?:[/?#][^{SPACE}\x00]*)?$(?!\n)"


def add_push_subscription(*, user, endpoint: str, p256dh: str, auth: str) -> PushSubscription:
    """A browser's Push API subscription. The endpoint must be an https URL of a push service;
    anything else is refused and nothing is stored."""
    if (
        not isinstance(endpoint, str)
        or len(endpoint) > PUSH_ENDPOINT_MAX
        or not re.search(PUSH_ENDPOINT_PATTERN, endpoint)
    ):
        raise InvalidInput("A push subscription's endpoint is an https URL.", code="invalid_subscription")
    for name, value, longest in (("p256dh", p256dh, PUSH_P256DH_MAX), ("auth", auth, PUSH_AUTH_MAX)):
        if (
            not isinstance(value, str)
            or not value
            or len(value) > longest
            or not value.isascii()
            or "\x00" in value
        ):
            raise InvalidInput(f"A push subscription needs its {name} key.", code="invalid_subscription")
    subscription, _ = PushSubscription.objects.update_or_create(
        endpoint=endpoint, defaults={"user": user, "p256dh": p256dh, "auth": auth}
    )
    return subscription


def remove_push_subscription(*, user, endpoint: str) -> None:
    if "\x00" in endpoint:  # no endpoint holds one, and PostgreSQL refuses it even in a lookup
        return
    PushSubscription.objects.filter(user=user, endpoint=endpoint).delete()


# --- fan-out -------------------------------------------------------------------------------------


def fan_out(*, notification_ids: list[int]) -> None:
    """Serve the email and push channels of these notifications, and of every other one still
    waiting for the same recipients (one email per recipient for the batch; message
    notifications wait for a digest), then mark them fanned out."""
    recipients = Notification.objects.filter(pk__in=notification_ids).values("recipient_id")
    notifications = list(
        Notification.objects.filter(recipient_id__in=recipients, fanned_out_at__isnull=True)
        .select_related("recipient__profile")
        .order_by("pk")
    )
    if not notifications:
        return
    wanted = selectors.channels_for(notifications)  # {notification id: {channel, ...}}
    emails: dict[int, list[Notification]] = {}
    digests: set[int] = set()
    pushes: list[Notification] = []
    for notification in notifications:
        channels = wanted[notification.pk]
        if Channel.PUSH in channels:
            pushes.append(notification)
        if Channel.EMAIL in channels and notification.recipient.email:
            if notification.kind in DIGESTED_KINDS:
                digests.add(notification.recipient_id)
            else:
                emails.setdefault(notification.recipient_id, []).append(notification)
    from .push import outcome_without_sending

    # A push whose outcome is known without sending (not configured, no browser) is written
    # settled, not claimed and then updated.
    settled = outcome_without_sending({n.recipient_id for n in pushes}) if pushes else {}
    pushes_of: dict[int, list[Notification]] = {}
    for notification in pushes:
        pushes_of.setdefault(notification.recipient_id, []).append(notification)
    # One recipient at a time, each with one claiming statement for all their channels: a
    # crash while serving one leaves the next ones unclaimed, so the redelivered task serves them.
    for recipient_id in dict.fromkeys([*pushes_of, *emails]):
        their_pushes, their_emails = pushes_of.get(recipient_id, []), emails.get(recipient_id, [])
        push_row = settled.get(recipient_id, (Delivery.Status.CLAIMED, ""))
        ours = _claim_rows(
            [(n, Channel.PUSH, *push_row) for n in their_pushes]
            + [(n, Channel.EMAIL, Delivery.Status.CLAIMED, "") for n in their_emails]
        )
        if recipient_id not in settled:
            _push([n for n in their_pushes if (n.pk, Channel.PUSH) in ours])
        _send_email([n for n in their_emails if (n.pk, Channel.EMAIL) in ours], digest=False)
    Notification.objects.filter(pk__in=[n.pk for n in notifications]).update(fanned_out_at=timezone.now())
    for recipient_id in digests:
        enqueue_task(
            "notifications.message_digest", recipient_id, countdown=settings.NOTIFICATION_EMAIL_DELAY_SECONDS
        )


def send_message_digest(*, recipient_id: int) -> int:
    """After the delay: one email for the recipient's unread-message notifications still
    unread; the ones read meanwhile are skipped. Returns how many went into the email."""
    from inbox.models import Membership

    waiting = list(
        Notification.objects.filter(
            recipient_id=recipient_id, kind__in=DIGESTED_KINDS, fanned_out_at__isnull=False
        )
        .exclude(deliveries__channel=Channel.EMAIL)
        .select_related("recipient__profile", "message")
        .order_by("pk")
    )
    if not waiting:
        return 0
    read_up_to = dict(
        Membership.objects.filter(
            user_id=recipient_id,
            conversation_id__in={n.message.conversation_id for n in waiting if n.message},
        ).values_list("conversation_id", "last_read_message_id")
    )
    still_wanted = selectors.channels_for(waiting)  # preferences now: unsubscribed during the delay
    unread, read, turned_off = [], [], []
    for notification in waiting:
        message = notification.message
        seen = message is None or message.pk <= (read_up_to.get(message.conversation_id) or 0)
        if Channel.EMAIL not in still_wanted[notification.pk]:
            turned_off.append(notification)
        else:
            (read if seen or notification.read_at else unread).append(notification)
    _claim(read, Channel.EMAIL, status=Delivery.Status.SKIPPED, detail="read before the digest")
    _claim(turned_off, Channel.EMAIL, status=Delivery.Status.SKIPPED, detail="email turned off")
    if unread:
        _email(unread, digest=True)
    return len(unread)


def _claim(
    notifications: list[Notification], channel: str, *, status=Delivery.Status.CLAIMED, detail=""
) -> list[Notification]:
    """Insert the channel's delivery rows for these notifications and return the notifications
    whose row this run created; those another run already holds are left out, so nothing is
    sent twice."""
    ours = _claim_rows([(n, channel, status, detail) for n in notifications])
    return [n for n in notifications if (n.pk, channel) in ours]


def _claim_rows(rows: list[tuple[Notification, str, str, str]]) -> set[tuple[int, str]]:
    """Insert (notification, channel, status, detail) delivery rows in one statement; return
    the (notification id, channel) pairs this run now holds. A conflict means another run has
    the row — unless that run's claim is older than NOTIFICATION_CLAIM_LEASE_SECONDS (longer
    than a task may run): its worker died before sending, and this run takes the row over. A
    row inserted settled (not `claimed`) is stamped sent_at, as _finish would. One
    INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING, where the ORM needs four statements."""
    if not rows:
        return set()
    fields = {name: Delivery._meta.get_field(name) for name in ("claim", "created_at")}
    claim = fields["claim"].get_db_prep_value(uuid.uuid4(), connection)
    moment = timezone.now()
    now = fields["created_at"].get_db_prep_value(moment, connection)
    abandoned_before = fields["created_at"].get_db_prep_value(
        moment - timedelta(seconds=settings.NOTIFICATION_CLAIM_LEASE_SECONDS), connection
    )
    params = []
    for notification, channel, status, detail in rows:
        settled_at = None if status == Delivery.Status.CLAIMED else now
        params += [notification.pk, channel, status, detail[:300], claim, now, settled_at]
    table = connection.ops.quote_name(Delivery._meta.db_table)
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (notification_id, channel, status, detail, claim, created_at, sent_at) "  # noqa: S608
            f"VALUES {values} ON CONFLICT (notification_id, channel) DO UPDATE SET "
            "status = EXCLUDED.status, detail = EXCLUDED.detail, claim = EXCLUDED.claim, "
            "created_at = EXCLUDED.created_at, sent_at = EXCLUDED.sent_at "
            f"WHERE {table}.status = %s AND {table}.created_at < %s "
            "RETURNING notification_id, channel",
            [*params, Delivery.Status.CLAIMED, abandoned_before],
        )
        return {(notification_id, channel) for notification_id, channel in cursor.fetchall()}


def _finish(notifications: list[Notification], channel: str, status: str, detail: str = "") -> None:
    Delivery.objects.filter(notification__in=notifications, channel=channel).update(
        status=status, detail=detail[:300], sent_at=timezone.now()
    )


def _email(notifications: list[Notification], *, digest: bool) -> None:
    _send_email(_claim(notifications, Channel.EMAIL), digest=digest)


def _send_email(claimed: list[Notification], *, digest: bool) -> None:
    """One email for these notifications of one recipient, whose deliveries this run claimed."""
    from .emails import send_notification_email

    if not claimed:
        return
    try:
        send_notification_email(recipient=claimed[0].recipient, notifications=claimed, digest=digest)
    except Exception as exc:  # the mail server: logged, kept as failed, not retried blindly
        logger.exception("notification email to user %s failed", claimed[0].recipient_id)
        _finish(claimed, Channel.EMAIL, Delivery.Status.FAILED, str(exc))
        return
    _finish(claimed, Channel.EMAIL, Delivery.Status.SENT)


def _push(claimed: list[Notification]) -> None:
    """Send the pushes whose deliveries this run claimed, and record how each went."""
    from .push import send_push

    outcomes: dict[tuple[str, str], list[Notification]] = {}
    for notification in claimed:
        outcomes.setdefault(send_push(notification), []).append(notification)
    for (status, detail), sent in outcomes.items():
        _finish(sent, Channel.PUSH, status, detail)


def sweep(*, older_than: timedelta | None = None) -> int:
    """Re-queue the notifications whose fan-out never ran, or whose delivery a worker claimed
    and died before sending (its claim outlived the lease); returns how many."""
    older_than = older_than or timedelta(seconds=settings.NOTIFICATION_SWEEP_AFTER_SECONDS)
    abandoned = Delivery.objects.filter(
        status=Delivery.Status.CLAIMED,
        created_at__lt=timezone.now() - timedelta(seconds=settings.NOTIFICATION_CLAIM_LEASE_SECONDS),
    ).values("notification_id")
    Notification.objects.filter(pk__in=abandoned).update(fanned_out_at=None)
    ids = list(
        Notification.objects.filter(fanned_out_at__isnull=True, created_at__lt=timezone.now() - older_than)
        .order_by("pk")
        .values_list("pk", flat=True)[:5000]
    )
    for start in range(0, len(ids), 500):
        enqueue_task("notifications.fan_out", ids[start : start + 500])
    return len(ids)
