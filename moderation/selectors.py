"""Reads for the moderation pages: a user's standing (the inbox banner) and a sender's history
(the review page). Each runs a fixed number of queries."""

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from inbox.models import Message

from .models import ModerationDecision, Report, Restriction

WARNING_SHOWN_DAYS = 30
HISTORY_LENGTH = 20


@dataclass
class Standing:
    """What the inbox tells a user about their own restrictions."""

    suspension: Restriction | None = None
    warning: Restriction | None = None

    def __bool__(self) -> bool:
        return self.suspension is not None or self.warning is not None


def standing(user) -> Standing:
    """A suspension in force (the one lasting longest), else a warning of the last
    WARNING_SHOWN_DAYS days that no admin lifted. One query."""
    if not getattr(user, "is_authenticated", False):
        return Standing()
    now = timezone.now()
    rows = list(
        Restriction.objects.filter(user=user, lifted_at__isnull=True, starts_at__lte=now)
        .filter(
            (Q(kind=Restriction.Kind.SUSPENSION) & (Q(ends_at__isnull=True) | Q(ends_at__gt=now)))
            | Q(kind=Restriction.Kind.WARNING, starts_at__gte=now - timedelta(days=WARNING_SHOWN_DAYS))
        )
        .order_by("-starts_at", "-pk")
    )
    suspensions = [r for r in rows if r.kind == Restriction.Kind.SUSPENSION]
    # A permanent suspension outweighs any temporary one; else the one ending last.
    suspensions.sort(key=lambda r: (r.ends_at is None, r.ends_at or now), reverse=True)
    warnings = [r for r in rows if r.kind == Restriction.Kind.WARNING]
    return Standing(
        suspension=suspensions[0] if suspensions else None,
        warning=None if suspensions else (warnings[0] if warnings else None),
    )


@dataclass
class SenderHistory:
    messages: list = field(default_factory=list)
    decisions: list = field(default_factory=list)
    reports: list = field(default_factory=list)
    restrictions: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)


def sender_history(sender, *, exclude_message_id: int | None = None) -> SenderHistory:
    """What a reviewer weighs: the sender's recent messages with their statuses, earlier
    decisions on their messages, reports against them and their restrictions (newest first)."""
    messages = (
        Message.objects.filter(sender=sender)
        .exclude(pk=exclude_message_id)
        .select_related("conversation__user_low__profile", "conversation__user_high__profile")
        .order_by("-id")[:HISTORY_LENGTH]
    )
    messages = list(messages)
    for message in messages:
        conversation = message.conversation
        message.recipient = (
            conversation.user_high if conversation.user_low_id == sender.pk else conversation.user_low
        )
    decisions = list(
        ModerationDecision.objects.filter(message__sender=sender)
        .select_related("moderator", "message")
        .order_by("-created_at", "-pk")[:HISTORY_LENGTH]
    )
    reports = list(
        Report.objects.filter(reported_user=sender)
        .select_related("reporter", "resolved_by")
        .order_by("-created_at", "-pk")[:HISTORY_LENGTH]
    )
    restrictions = list(
        Restriction.objects.filter(user=sender)
        .select_related("created_by", "lifted_by")
        .order_by("-starts_at", "-pk")[:HISTORY_LENGTH]
    )
    counts = {
        row["status"]: row["n"]
        for row in Message.objects.filter(sender=sender).values("status").annotate(n=Count("id")).order_by()
    }
    return SenderHistory(
        messages=messages, decisions=decisions, reports=reports, restrictions=restrictions, counts=counts
    )
