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
they agree; a test compares them on generated history.
"""

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from inbox.models import Conversation, Membership, Message, ResponseObligation
from marketplace.accounts.models import AwayPeriod, Profile, User

AWAY = "away"


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


def _was_away(seller: User, at) -> bool:
    local_day = timezone.localtime(at, timezone=_zone(seller)).date()
    return AwayPeriod.objects.filter(user=seller, starts_on__lte=local_day, ends_on__gte=local_day).exists()


def _zone(user: User) -> ZoneInfo:
    return ZoneInfo(user.profile.timezone or "UTC")


@dataclass(frozen=True)
class _Owed:
    message: Message
    kind: str


def _owed_by(message: Message, *, earlier_from_buyer: bool) -> _Owed | None:
    if message.order_id is not None:
        return _Owed(message, ResponseObligation.Kind.ORDER)
    if not earlier_from_buyer:
        return _Owed(message, ResponseObligation.Kind.INBOX)
    return None


def _obligation(seller: User, owed: _Owed, answer: Message | None) -> ResponseObligation:
    message = owed.message
    away = owed.kind == ResponseObligation.Kind.INBOX and _was_away(seller, message.created_at)
    return ResponseObligation(
        seller=seller,
        conversation_id=message.conversation_id,
        message=message,
        kind=owed.kind,
        arrived_at=message.created_at,
        answer=answer,
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
            ResponseObligation.objects.bulk_create([_obligation(seller, owed, answer)], ignore_conflicts=True)
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
    """Derive every obligation of `seller` from the messages again (one conversation at a
    time, streamed) and replace what is stored. `changed` counts the obligations that differ
    from the stored ones: 0 when the incremental path kept up."""
    result = RebuildResult(sellers=1)
    fresh: list[ResponseObligation] = []
    conversation_ids = Membership.objects.filter(user=seller).values_list("conversation_id", flat=True)
    for conversation_id in conversation_ids.iterator(chunk_size=500):
        fresh.extend(_derive(seller, conversation_id))
    stored = {
        o.message_id: _comparable(o)
        for o in ResponseObligation.objects.filter(seller=seller).only(
            "message_id", "kind", "arrived_at", "answered_at", "answer_id", "excluded_reason"
        )
    }
    derived = {o.message_id: _comparable(o) for o in fresh}
    result.obligations = len(fresh)
    result.changed = len(set(stored.items()) ^ set(derived.items()))
    if not dry_run and result.changed:
        with transaction.atomic():
            ResponseObligation.objects.filter(seller=seller).delete()
            ResponseObligation.objects.bulk_create(fresh, batch_size=1000)
    return result


def _comparable(obligation: ResponseObligation) -> tuple:
    return (
        obligation.kind,
        obligation.arrived_at,
        obligation.answered_at,
        obligation.answer_id,
        obligation.excluded_reason,
    )


def _derive(seller: User, conversation_id: int) -> list[ResponseObligation]:
    messages = (
        _counted_messages()
        .filter(conversation_id=conversation_id, is_automatic=False)
        .order_by("pk")
        .only("pk", "sender_id", "order_id", "created_at", "conversation_id")
    )
    obligations: list[ResponseObligation] = []
    waiting: list[_Owed] = []
    buyer_wrote = False
    for message in messages.iterator(chunk_size=500):
        if message.sender_id == seller.pk:
            obligations.extend(_obligation(seller, owed, message) for owed in waiting)
            waiting = []
            continue
        owed = _owed_by(message, earlier_from_buyer=buyer_wrote)
        buyer_wrote = True
        if owed is not None:
            waiting.append(owed)
    obligations.extend(_obligation(seller, owed, None) for owed in waiting)
    return obligations


def rebuild_all_obligations(*, sellers=None, dry_run: bool = False):
    """rebuild_obligations for every seller (or those given), one at a time, yielding each
    result: memory stays bounded by one seller's obligations whatever the totals."""
    if sellers is None:
        sellers = (
            User.objects.filter(profile__role=Profile.Role.SELLER)
            .select_related("profile")
            .order_by("pk")
            .iterator(chunk_size=200)
        )
    for seller in sellers:
        yield rebuild_obligations(seller=seller, dry_run=dry_run)
