"""The response obligations behind a seller's figures (inbox and order response rates, average
response time), written as messages are delivered and rebuilt from the messages in full.

What counts, exactly (docs/ARCHITECTURE.md, "Response figures"):
- An obligation is a visible message a buyer sent a seller that the seller is expected to
  answer: the buyer's first message in the conversation (`inbox`), or any buyer message tied to
  an open order (`order`: new messages are tagged with the open order).
- The seller's next visible message in the conversation answers every obligation before it.
- Messages that moderation held (approved later or not) are neither obligations nor answers,
  and neither are automatic messages. A first message that arrived on a day the seller had set
  themselves away (their own calendar day) is kept but excluded.
- Times are the messages' own `created_at`: the windows are exact durations.

The incremental path (record_delivered_message, run by a Celery task after each delivery) and
the full rebuild (rebuild_obligations) apply these rules to the same data, in either order, so
they agree; a test compares them on generated history. Both decide "away" with _was_away over
the seller's away periods: the incremental path fetches the periods near the message's day,
the rebuild all of them.

The rebuild takes sellers SELLERS_PER_QUERY at a time: one query for their away periods, one
streamed query (a server-side cursor on PostgreSQL) for their counted messages, seller by
seller and conversation by conversation, then one query per seller for the stored
obligations (and the writes, when they differ). Memory holds one seller's obligations and one
chunk of rows, whatever the totals.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import groupby, islice
from operator import attrgetter
from typing import Protocol
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from inbox.models import Conversation, Message, ResponseObligation
from marketplace.accounts.models import AwayPeriod, Profile, User

AWAY = "away"
MESSAGE_FIELDS = ("pk", "conversation_id", "sender_id", "order_id", "created_at")
# What the rebuild compares between a stored and a derived obligation (with its message_id).
COMPARED_FIELDS = ("kind", "arrived_at", "answered_at", "answer_id", "excluded_reason")
STREAM_CHUNK = 2000
SELLERS_PER_QUERY = 100

AwayPeriods = list[tuple[date, date]]


class _Sent(Protocol):
    """What both paths read of a counted message: a Message, or a row of the rebuild's query
    (MESSAGE_FIELDS)."""

    pk: int
    conversation_id: int
    sender_id: int
    order_id: int | None
    created_at: datetime


def _counted_messages():
    """Visible messages that moderation never held, and that no automation wrote."""
    from moderation.models import ModerationDecision

    held = ModerationDecision.objects.filter(message_id=OuterRef("pk"))
    return Message.objects.filter(status=Message.Status.VISIBLE).exclude(Exists(held))


def _seller_of(conversation: Conversation, sender_id: int) -> User | None:
    """The other participant, when they sell (the one who owes an answer)."""
    other_id = (
        conversation.user_high_id if conversation.user_low_id == sender_id else conversation.user_low_id
    )
    other = User.objects.select_related("profile").filter(pk=other_id).first()
    return other if other is not None and other.profile.is_seller else None


def _away_periods(seller_ids: list[int], *, around: datetime | None = None) -> dict[int, AwayPeriods]:
    """These sellers' away periods as (first day, last day), by seller (none: an empty list):
    all of them, or only those that may hold the seller's calendar day of `around`."""
    periods = AwayPeriod.objects.filter(user_id__in=seller_ids)
    if around is not None:
        # Every time zone's calendar day is within a day of the UTC one.
        utc_day = around.astimezone(UTC).date()
        periods = periods.filter(
            starts_on__lte=utc_day + timedelta(days=1), ends_on__gte=utc_day - timedelta(days=1)
        )
    by_seller = defaultdict(list)
    for seller_id, starts_on, ends_on in periods.values_list("user_id", "starts_on", "ends_on"):
        by_seller[seller_id].append((starts_on, ends_on))
    return by_seller


def _was_away(seller: User, away_periods: AwayPeriods, at: datetime) -> bool:
    """`at` fell on a day the seller had set as away, in their own time zone (both ends in)."""
    local_day = timezone.localtime(at, timezone=_zone(seller)).date()
    return any(starts_on <= local_day <= ends_on for starts_on, ends_on in away_periods)


def _zone(user: User) -> ZoneInfo:
    return ZoneInfo(user.profile.timezone or "UTC")


@dataclass(frozen=True)
class _Owed:
    message: _Sent
    kind: str


def _owed_by(message: _Sent, *, earlier_from_buyer: bool) -> _Owed | None:
    if message.order_id is not None:
        return _Owed(message, ResponseObligation.Kind.ORDER)
    if not earlier_from_buyer:
        return _Owed(message, ResponseObligation.Kind.INBOX)
    return None


def _obligation(
    seller: User, owed: _Owed, answer: _Sent | None, away_periods: AwayPeriods
) -> ResponseObligation:
    message = owed.message
    away = owed.kind == ResponseObligation.Kind.INBOX and _was_away(seller, away_periods, message.created_at)
    return ResponseObligation(
        seller=seller,
        conversation_id=message.conversation_id,
        message_id=message.pk,
        kind=owed.kind,
        arrived_at=message.created_at,
        answer_id=answer.pk if answer is not None else None,
        answered_at=answer.created_at if answer is not None else None,
        excluded_reason=AWAY if away else "",
    )


def record_delivered_message(*, message_id: int) -> None:
    """After a message is delivered: a buyer's message may create an obligation; a seller's
    message answers the open ones before it. Safe to run twice, and in any order."""
    message = _counted_messages().select_related("conversation").filter(pk=message_id).first()
    if message is None or message.is_automatic:
        return
    conversation = message.conversation
    seller = _seller_of(conversation, message.sender_id)
    if seller is not None:
        earlier = _counted_messages().filter(
            conversation=conversation, sender_id=message.sender_id, pk__lt=message.pk, is_automatic=False
        )
        owed = _owed_by(message, earlier_from_buyer=earlier.exists())
        if owed is not None:
            answer = (
                _counted_messages()
                .filter(conversation=conversation, sender=seller, pk__gt=message.pk, is_automatic=False)
                .order_by("pk")
                .first()
            )
            away_periods = (
                _away_periods([seller.pk], around=message.created_at)[seller.pk]
                if owed.kind == ResponseObligation.Kind.INBOX
                else []
            )
            ResponseObligation.objects.bulk_create(
                [_obligation(seller, owed, answer, away_periods)], ignore_conflicts=True
            )
    if message.sender.profile.is_seller:
        ResponseObligation.objects.filter(
            seller_id=message.sender_id,
            conversation=conversation,
            answered_at__isnull=True,
            message_id__lt=message.pk,
        ).update(answer=message, answered_at=message.created_at)


@dataclass
class RebuildResult:
    sellers: int = 0
    obligations: int = 0
    changed: int = 0


def rebuild_obligations(*, seller: User, dry_run: bool = False) -> RebuildResult:
    """Derive every obligation of `seller` from the messages again and replace what is stored.
    `changed` counts the obligations that differ from the stored ones: 0 when the incremental
    path kept up."""
    (result,) = _rebuild_batch([seller], dry_run=dry_run)
    return result


def rebuild_all_obligations(*, sellers=None, dry_run: bool = False):
    """rebuild_obligations for every seller (or those given), yielding each result; a batch
    of SELLERS_PER_QUERY sellers shares its queries (see the module's docstring)."""
    if sellers is None:
        sellers = (
            User.objects.filter(profile__role=Profile.Role.SELLER)
            .select_related("profile")
            .order_by("pk")
            .iterator(chunk_size=SELLERS_PER_QUERY)
        )
    sellers = iter(sellers)
    while batch := list(islice(sellers, SELLERS_PER_QUERY)):
        yield from _rebuild_batch(batch, dry_run=dry_run)


def _rebuild_batch(sellers: list[User], *, dry_run: bool):
    """Rebuild these sellers one after the other (by id), from one stream of their messages."""
    by_id = {seller.pk: seller for seller in sellers}
    seller_ids = sorted(by_id)
    away_periods = _away_periods(seller_ids)
    rows = _counted_messages_of(seller_ids).iterator(chunk_size=STREAM_CHUNK)
    rows_by_seller = groupby(rows, key=attrgetter("seller_id"))
    next_rows = next(rows_by_seller, None)
    for seller_id in seller_ids:
        seller, fresh = by_id[seller_id], []
        if next_rows is not None and next_rows[0] == seller_id:  # no rows: no messages
            for _conversation_id, messages in groupby(next_rows[1], key=attrgetter("conversation_id")):
                fresh.extend(_derive(seller, messages, away_periods[seller_id]))
            next_rows = next(rows_by_seller, None)
        yield _replace_stored(seller, fresh, dry_run=dry_run)


def _replace_stored(seller: User, fresh: list[ResponseObligation], *, dry_run: bool) -> RebuildResult:
    """Compare the derived obligations with the stored ones; replace them if any differs."""
    stored_rows = ResponseObligation.objects.filter(seller=seller).values_list("message_id", *COMPARED_FIELDS)
    stored = {row[0]: row[1:] for row in stored_rows}
    derived = {o.message_id: _comparable(o) for o in fresh}
    result = RebuildResult(sellers=1, obligations=len(fresh))
    result.changed = len(set(stored.items()) ^ set(derived.items()))
    if not dry_run and result.changed:
        with transaction.atomic():
            ResponseObligation.objects.filter(seller=seller).delete()
            ResponseObligation.objects.bulk_create(fresh, batch_size=1000)
    return result


def _comparable(obligation: ResponseObligation) -> tuple:
    return tuple(getattr(obligation, field) for field in COMPARED_FIELDS)


def _counted_messages_of(seller_ids: list[int]):
    """The counted messages of every conversation of these sellers, as rows with `seller_id`
    and MESSAGE_FIELDS: seller by seller, conversation by conversation, in the order sent."""
    return (
        _counted_messages()
        .filter(conversation__memberships__user_id__in=seller_ids, is_automatic=False)
        .annotate(seller_id=F("conversation__memberships__user_id"))
        .order_by("seller_id", "conversation_id", "pk")
        .values_list("seller_id", *MESSAGE_FIELDS, named=True)
    )


def _derive(seller: User, messages, away_periods: AwayPeriods) -> list[ResponseObligation]:
    """The obligations of one conversation, from its counted messages in order."""
    obligations: list[ResponseObligation] = []
    waiting: list[_Owed] = []
    buyer_wrote = False
    for message in messages:
        if message.sender_id == seller.pk:
            obligations.extend(_obligation(seller, owed, message, away_periods) for owed in waiting)
            waiting = []
            continue
        owed = _owed_by(message, earlier_from_buyer=buyer_wrote)
        buyer_wrote = True
        if owed is not None:
            waiting.append(owed)
    obligations.extend(_obligation(seller, owed, None, away_periods) for owed in waiting)
    return obligations
