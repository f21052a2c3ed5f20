"""Every write moderation makes: reviewing held messages, reports, restrictions."""

from django.db import transaction
from django.utils import timezone

from inbox.models import Message
from inbox.services import announce_moderation_outcome, deliver_approved_message, file_conversations
from inbox.services.messaging import message_url
from marketplace.errors import Conflict, InvalidInput, NotFound
from notifications.models import Kind as NotificationKind
from notifications.services import display_name, excerpt, notify

from .models import ModerationDecision, Report, Restriction
from .rules import notify_restriction

NOTE_MAX = 2000


def approve_message(*, message: Message, moderator, note: str = "") -> Message:
    """A held message goes out: the recipient gets it as a normal new message. Once only: a
    second approval (two moderators, two tabs) changes nothing and says so."""
    with transaction.atomic():
        waiting = Message.objects.filter(pk=message.pk, status=Message.Status.HELD, deleted_at__isnull=True)
        changed = waiting.update(status=Message.Status.VISIBLE, moderation_reason="")
        if not changed:
            raise Conflict(
                "This message is no longer waiting for review (decided already, or deleted by its sender).",
                code="not_held",
            )
        ModerationDecision.objects.create(
            message_id=message.pk,
            decision=ModerationDecision.Decision.APPROVED,
            moderator=moderator,
            note=note,
        )
        message = deliver_approved_message(message=message)
        _notify_sender(
            message=message,
            moderator=moderator,
            kind=NotificationKind.MESSAGE_APPROVED,
            title=f"Your message to {_recipient_name(message)} was approved and delivered",
            body=excerpt(message.body),
            outcome="approved",
        )
        return message


def reject_message(*, message: Message, moderator, reason: str, note: str = "") -> Message:
    """A held message is refused: it is never delivered, and its sender is told why."""
    reason = (reason or "").strip() or "This message breaks the messaging rules."
    with transaction.atomic():
        changed = Message.objects.filter(pk=message.pk, status=Message.Status.HELD).update(
            status=Message.Status.REJECTED, moderation_reason=reason[:500]
        )
        if not changed:
            raise Conflict("This message is no longer waiting for review.", code="not_held")
        ModerationDecision.objects.create(
            message_id=message.pk,
            decision=ModerationDecision.Decision.REJECTED,
            moderator=moderator,
            note=note,
        )
        message = Message.objects.select_related("sender", "conversation", "reply_to__sender", "order").get(
            pk=message.pk
        )
        announce_moderation_outcome(message=message)
        _notify_sender(
            message=message,
            moderator=moderator,
            kind=NotificationKind.MESSAGE_REJECTED,
            title=f"Your message to {_recipient_name(message)} was not delivered",
            body=excerpt(reason),
            outcome="rejected",
        )
    return message


def _recipient_name(message: Message) -> str:
    conversation = message.conversation
    recipient = (
        conversation.user_high if conversation.user_low_id == message.sender_id else conversation.user_low
    )
    return display_name(recipient)


def _notify_sender(*, message: Message, moderator, kind: str, title: str, body: str, outcome: str) -> None:
    """A moderator decided on a held message: its sender is told (not a moderator deciding on
    their own message)."""
    if moderator is not None and moderator.pk == message.sender_id:
        return
    notify(
        recipient=message.sender,
        kind=kind,
        title=title,
        body=body,
        url=message_url(message),
        dedupe_key=f"message:{message.pk}:{outcome}",
    )


def report(*, reporter, conversation, reason: str, note: str = "", message: Message | None = None) -> Report:
    """Report a conversation (or one of its messages). Reporting spam also moves the
    conversation to the reporter's Spam, which takes it out of what they must answer."""
    if reason not in Report.Reason.values:
        raise InvalidInput(f"Choose a reason: {', '.join(Report.Reason.values)}.", code="invalid_reason")
    if not isinstance(note, str) or len(note) > NOTE_MAX or "\x00" in note:
        raise InvalidInput(f"The note is text of at most {NOTE_MAX} characters.", code="invalid_note")
    if reporter.pk not in (conversation.user_low_id, conversation.user_high_id):
        raise NotFound("Conversation not found.")
    reported_id = (
        conversation.user_high_id if conversation.user_low_id == reporter.pk else conversation.user_low_id
    )
    if message is not None and (
        message.conversation_id != conversation.pk or message.sender_id != reported_id
    ):  # 409: the message is there for the reporter, but not one this report can name
        raise Conflict("Report a message the other person sent in this conversation.", code="invalid_message")
    with transaction.atomic():
        created = Report.objects.create(
            reporter=reporter,
            reported_user_id=reported_id,
            conversation=conversation,
            message=message,
            reason=reason,
            note=note.strip(),
        )
        if reason == Report.Reason.SPAM:
            file_conversations(user=reporter, conversation_ids=[conversation.pk], action="report_spam")
    return created


def resolve_report(*, report: Report, moderator, resolution: str) -> Report:
    with transaction.atomic():
        changed = Report.objects.filter(pk=report.pk, status=Report.Status.OPEN).update(
            status=Report.Status.RESOLVED,
            resolved_at=timezone.now(),
            resolved_by=moderator,
            resolution=(resolution or "").strip()[:NOTE_MAX],
        )
        if not changed:
            raise Conflict("This report was already resolved.", code="already_resolved")
    report.refresh_from_db()
    return report


def restrict(*, user, kind: str, reason: str, moderator, ends_at=None) -> Restriction:
    """An admin's warning or suspension (temporary with ends_at, permanent without)."""
    if kind not in (Restriction.Kind.WARNING, Restriction.Kind.SUSPENSION):
        raise InvalidInput("An admin gives a warning or a suspension.", code="invalid_kind")
    if not reason.strip():
        raise InvalidInput("Say why, for the user and the next admin.", code="invalid_reason")
    with transaction.atomic():
        restriction = Restriction.objects.create(
            user=user, kind=kind, reason=reason.strip()[:300], ends_at=ends_at, created_by=moderator
        )
        notify_restriction(restriction)
    return restriction


def lift_restriction(*, restriction: Restriction, moderator) -> Restriction:
    """Lift any step of the ladder (or an admin's restriction): it stops applying and counting."""
    Restriction.objects.filter(pk=restriction.pk, lifted_at__isnull=True).update(
        lifted_at=timezone.now(), lifted_by=moderator
    )
    restriction.refresh_from_db()
    return restriction
