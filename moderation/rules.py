"""Who may write to whom: suspensions, the seller cold-messaging rule, the buyer's switch for
sellers they have not contacted, and the messaging limit with its ladder. Each refusal says
which rule applied and what to do."""

from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from inbox.models import Message
from marketplace.errors import Forbidden
from notifications.models import Kind as NotificationKind
from notifications.services import notify

from .counters import count_up
from .counters import read as read_counter
from .models import Restriction

LIMIT_WINDOW_SECONDS = 3600


def suspension_in_force(user) -> Restriction | None:
    now = timezone.now()
    return (
        Restriction.objects.filter(
            user=user, kind=Restriction.Kind.SUSPENSION, lifted_at__isnull=True, starts_at__lte=now
        )
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .order_by("-starts_at")
        .first()
    )


def ensure_not_suspended(user) -> None:
    suspension = suspension_in_force(user)
    if suspension is None:
        return
    if suspension.ends_at is None:
        raise Forbidden(
            f"Your account is suspended from messaging: {suspension.reason} Contact support to appeal.",
            code="suspended",
        )
    ends_at = timezone.localtime(suspension.ends_at)  # the reader's zone on pages, UTC over the API
    until = f"{date_format(ends_at, 'DATETIME_FORMAT')} {ends_at.tzname()}"
    raise Forbidden(
        f"Your account is suspended from messaging until {until}: {suspension.reason}", code="suspended"
    )


def _is_seller(user) -> bool:
    return user.profile.is_seller


def ensure_may_write(*, sender, recipient, conversation=None) -> None:
    """Raise Forbidden when `sender` may not write to `recipient` now. `conversation` is None
    when none exists between them yet."""
    ensure_not_suspended(sender)
    if conversation is not None:
        # What they wrote themselves: a message or a request (order updates do not count).
        their_messages = Message.objects.filter(
            conversation=conversation,
            sender=recipient,
            status=Message.Status.VISIBLE,
            kind__in=(Message.Kind.TEXT, Message.Kind.REQUEST),
        )
        they_wrote = their_messages.exists()
    else:
        they_wrote = False
    if _is_seller(sender) and not _is_seller(recipient) and not they_wrote:
        if not _have_an_order(sender, recipient):
            raise Forbidden(
                "Sellers answer buyers who wrote first or who ordered from them: wait for this buyer to "
                "contact you.",
                code="seller_cannot_start",
            )
        if not recipient.profile.accepts_new_sellers:
            raise Forbidden(
                f"{recipient.profile.display_name} accepts messages only from sellers they contacted first.",
                code="buyer_closed_to_new_sellers",
            )
    if is_new_contact(conversation):
        _check_new_contact_limit(sender)


def _have_an_order(seller, buyer) -> bool:
    from orders.models import Order

    return Order.objects.filter(seller=seller, buyer=buyer).exists()


def is_new_contact(conversation) -> bool:
    """Nobody has written in this conversation yet (a refused message does not count)."""
    if conversation is not None and conversation.last_message_id is not None:
        return False  # something was delivered: no need to ask the database
    return (
        conversation is None
        or not Message.objects.filter(
            conversation=conversation, status__in=(Message.Status.VISIBLE, Message.Status.HELD)
        ).exists()
    )


def new_contact_limit(user) -> int:
    young = user.date_joined > timezone.now() - timedelta(days=settings.MODERATION_NEW_ACCOUNT_DAYS)
    if young:
        return settings.MODERATION_NEW_ACCOUNT_NEW_CONTACTS_PER_HOUR
    return settings.MODERATION_NEW_CONTACTS_PER_HOUR


def _counter_key(user) -> str:
    return f"moderation:new-contacts:{user.pk}"


def _check_new_contact_limit(sender) -> None:
    limit = new_contact_limit(sender)
    if (read_counter(_counter_key(sender))) < limit:
        return
    step = climb_ladder(sender)
    message = (
        f"You have written to {limit} new people in the last hour, the most allowed. Wait 60 minutes "
        "before writing to anyone outside your contacts; your existing conversations keep working."
    )
    if step.kind == Restriction.Kind.WARNING:
        message += " This is a warning: reaching the limit again leads to a suspension."
    elif step.kind == Restriction.Kind.SUSPENSION:
        message = ""
        ensure_not_suspended(sender)
    raise Forbidden(message, code="messaging_limit")


def count_new_contact(user) -> int:
    """One more new person written to this hour (called once the message is stored)."""
    return count_up(_counter_key(user), window_seconds=LIMIT_WINDOW_SECONDS)


def climb_ladder(user) -> Restriction:
    """Record the next step of MODERATION_LIMIT_LADDER for `user` (steps lifted by an admin,
    and steps older than MODERATION_LADDER_DAYS, do not count). One step per limit window:
    more attempts within the same hour repeat that hour's step rather than climbing."""
    now = timezone.now()
    since = now - timedelta(days=settings.MODERATION_LADDER_DAYS)
    with transaction.atomic():
        # The user's row serialises concurrent attempts, so two cannot record the same step.
        type(user).objects.select_for_update().filter(pk=user.pk).first()
        taken = list(
            Restriction.objects.filter(
                user=user, created_by__isnull=True, lifted_at__isnull=True, starts_at__gte=since
            ).order_by("starts_at", "pk")
        )
        if taken and taken[-1].starts_at > now - timedelta(seconds=LIMIT_WINDOW_SECONDS):
            return taken[-1]
        ladder = settings.MODERATION_LIMIT_LADDER
        step = ladder[min(len(taken), len(ladder) - 1)]
        kind, _, hours = step.partition(":")
        ends_at = now + timedelta(hours=int(hours)) if hours else None
        if kind == Restriction.Kind.NOTICE:
            ends_at = now + timedelta(seconds=LIMIT_WINDOW_SECONDS)
        reasons = {
            Restriction.Kind.NOTICE: "Reached the limit of new people per hour.",
            Restriction.Kind.WARNING: "Reached the limit of new people per hour again.",
            Restriction.Kind.SUSPENSION: "Repeatedly messaging too many new people (spam).",
        }
        restriction = Restriction.objects.create(
            user=user, kind=kind, reason=reasons[kind], starts_at=now, ends_at=ends_at
        )
        notify_restriction(restriction)  # a notice needs none: the refusal itself says it
        return restriction


def notify_restriction(restriction: Restriction) -> None:
    """Tell the user about a warning or a suspension (a ladder step or an admin's), once per
    restriction. The inbox shows it as a banner too; that is where the link goes."""
    user = restriction.user
    if restriction.kind == Restriction.Kind.WARNING:
        kind, title = NotificationKind.WARNING, "You received a warning about messaging"
    elif restriction.kind == Restriction.Kind.SUSPENSION:
        kind = NotificationKind.SUSPENSION
        if restriction.ends_at is None:
            title = "Your account is suspended from messaging"
        else:
            try:
                zone = ZoneInfo(user.profile.timezone)
            except Exception:  # an account without a profile, or a zone since removed
                zone = ZoneInfo("UTC")
            ends_at = restriction.ends_at.astimezone(zone)
            until = f"{ends_at:%b %-d, %H:%M} {ends_at.tzname()}"
            title = f"Your account is suspended from messaging until {until}"
    else:
        return
    notify(
        recipient=user,
        kind=kind,
        title=title,
        body=restriction.reason,
        url=reverse("inbox:index"),
        dedupe_key=f"restriction:{restriction.pk}",
    )
