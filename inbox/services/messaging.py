"""Writes about messages: conversations, sending, replies, edits and deletions, reads, typing,
drafts.

Each service is one transaction. Events for open tabs are appended to the per-user log inside
it (inbox.events) and pushed only after commit.
"""

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from attachments.services import attach, claim_for_message
from marketplace.errors import Conflict, Forbidden, InvalidInput, NotFound
from moderation import rules as moderation_rules
from moderation.scanning import HOLD, REJECT, Verdict
from moderation.scanning import scan as moderation_scan
from notifications.models import Kind as NotificationKind
from notifications.services import conversation_url, display_name, excerpt, notify
from outbox.services import enqueue_task

from ..events import append_events, push_ephemeral
from ..models import Block, Conversation, Event, EventLogHead, Membership, Message, MessageRevision
from ..payloads import message_payload
from ..presence import online_user_ids
from ..selectors import auto_reply_due
from .filing import announce_states
from .limits import ensure_send_rate

logger = logging.getLogger(__name__)

User = get_user_model()

# Cards with a notification kind of their own (an order step, an offer, a request) are not also
# announced as a new message; text and calls are.
NEW_MESSAGE_KINDS = (Message.Kind.TEXT, Message.Kind.CALL)
# A buyer's first contact: a message, or a request from a gig page.
AUTO_REPLY_TRIGGER_KINDS = (Message.Kind.TEXT, Message.Kind.REQUEST)


def message_url(message: Message) -> str:
    """Where a message is read: its conversation, scrolled to it."""
    return conversation_url(message.conversation_id, message.pk)


def validate_message_body(body) -> str:
    """A message is text of 1..MESSAGE_MAX_LENGTH characters, not only whitespace. It is stored
    exactly as written (escaping happens on output)."""
    if not isinstance(body, str):
        raise InvalidInput("The message body must be text.", code="invalid_body")
    if not body.strip():
        raise InvalidInput("Write something before sending.", code="empty_body")
    if len(body) > settings.MESSAGE_MAX_LENGTH:
        raise InvalidInput(
            f"A message is at most {settings.MESSAGE_MAX_LENGTH} characters; this one has {len(body)}.",
            code="body_too_long",
        )
    if "\x00" in body:
        raise InvalidInput("The message contains a NUL character.", code="invalid_body")
    return body


def ensure_can_send(sender) -> None:
    if not sender.is_active:
        raise Forbidden("This account is deactivated.", code="account_inactive")
    if not sender.is_email_verified:
        raise Forbidden(
            "Confirm your email address before sending messages (check your inbox, or resend the link "
            "from your profile).",
            code="email_unverified",
        )


def get_or_create_conversation(*, user, other_user) -> Conversation:
    """The one conversation between two users, with a membership for each."""
    if user.pk == other_user.pk:
        raise InvalidInput("You cannot start a conversation with yourself.", code="self_conversation")
    low, high = sorted([user, other_user], key=lambda u: u.pk)
    conversation = Conversation.objects.filter(user_low=low, user_high=high).first()
    if conversation is not None:
        return conversation
    now = timezone.now()
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(user_low=low, user_high=high, created_at=now)
            Membership.objects.bulk_create(
                [
                    Membership(conversation=conversation, user=low, other_user=high, last_message_at=now),
                    Membership(conversation=conversation, user=high, other_user=low, last_message_at=now),
                ]
            )
    except IntegrityError:
        # Both users opened it at the same moment: the other transaction created it.
        conversation = Conversation.objects.get(user_low=low, user_high=high)
    return conversation


def start_conversation(
    *,
    sender,
    recipient_username: str,
    body: str,
    client_id: uuid.UUID | None = None,
    rate_limited: bool = False,
) -> tuple[Conversation, Message, bool]:
    """Open (or reuse) the conversation with a user and send the first message into it.
    `rate_limited`: a person sending (not a seed or an automatic message): counted against
    MESSAGE_RATE_PER_MINUTE unless it is a retry of a stored message."""
    validate_message_body(body)
    ensure_can_send(sender)
    recipient = (
        # No username holds a NUL, and PostgreSQL refuses one even in a lookup.
        User.objects.select_related("profile")
        .filter(username__iexact=recipient_username, is_active=True)
        .first()
        if "\x00" not in recipient_username
        else None
    )
    if recipient is None:
        raise NotFound(f"There is no user called {recipient_username!r}.", code="unknown_recipient")
    if client_id is not None:
        replayed = (
            Message.objects.filter(sender=sender, client_id=client_id).select_related("conversation").first()
        )
        if replayed is not None:
            if recipient.pk not in (replayed.conversation.user_low_id, replayed.conversation.user_high_id):
                raise Conflict(
                    "This client_id was already used for a message in another conversation.",
                    code="client_id_reused",
                )
            return replayed.conversation, replayed, False
    if rate_limited:
        ensure_send_rate(sender=sender)
    existing = Conversation.objects.filter(
        user_low_id=min(sender.pk, recipient.pk), user_high_id=max(sender.pk, recipient.pk)
    ).first()
    moderation_rules.ensure_may_write(sender=sender, recipient=recipient, conversation=existing)
    verdict = moderation_scan(body, sender=sender, recipient=recipient)
    with transaction.atomic():  # a conversation is never left behind without its first message
        conversation = get_or_create_conversation(user=sender, other_user=recipient)
        message, created = _send(
            sender=sender, conversation=conversation, body=body, client_id=client_id, verdict=verdict
        )
    return conversation, message, created


def send_message(
    *,
    sender,
    conversation: Conversation,
    body: str,
    client_id: uuid.UUID | None = None,
    reply_to_id: int | None = None,
    order=None,
    attachment_ids: list[int] | None = None,
    rate_limited: bool = False,
) -> tuple[Message, bool]:
    """Store a message and tell both participants. Idempotent on (sender, client_id): a retry
    returns the message the first attempt stored, and `created` is False; `rate_limited` counts
    a send that is not such a retry against MESSAGE_RATE_PER_MINUTE (a person sending). `reply_to_id` quotes
    an earlier message of the same conversation. `order` (one of this conversation's orders, as
    the order page writes) tags the message with it; by default an open order tags it.
    `attachment_ids`: uploads of the sender's (attachments app) that the message carries; with
    files, the text may be empty."""
    if not (attachment_ids and body == ""):
        validate_message_body(body)
    ensure_can_send(sender)
    if order is not None and order.conversation_id != conversation.pk:
        raise InvalidInput("That order belongs to another conversation.", code="invalid_order")
    client_id = client_id or uuid.uuid4()
    existing = _replayed_message(sender=sender, client_id=client_id, conversation=conversation)
    if existing is not None:
        return existing, False
    if rate_limited:
        ensure_send_rate(sender=sender)
    recipient = _other_participant(conversation, sender)
    moderation_rules.ensure_may_write(sender=sender, recipient=recipient, conversation=conversation)
    verdict = moderation_scan(body, sender=sender, recipient=recipient) if body else Verdict()
    return _send(
        sender=sender,
        conversation=conversation,
        body=body,
        client_id=client_id,
        reply_to_id=reply_to_id,
        order=order,
        verdict=verdict,
        attachment_ids=attachment_ids or (),
        replay_checked=True,
    )


def _other_participant(conversation: Conversation, user):
    if user.pk not in (conversation.user_low_id, conversation.user_high_id):
        raise NotFound("Conversation not found.")
    other_id = conversation.user_high_id if conversation.user_low_id == user.pk else conversation.user_low_id
    return User.objects.select_related("profile").get(pk=other_id)


def _send(
    *,
    sender,
    conversation: Conversation,
    body: str,
    client_id: uuid.UUID | None,
    verdict: Verdict,
    reply_to_id: int | None = None,
    order=None,
    attachment_ids=(),
    replay_checked: bool = False,
) -> tuple[Message, bool]:
    """Store a message whose sender may write and whose text was scanned. `replay_checked`:
    the caller has just looked for this client_id (a race still ends in the IntegrityError)."""
    client_id = client_id or uuid.uuid4()
    if not replay_checked:
        existing = _replayed_message(sender=sender, client_id=client_id, conversation=conversation)
        if existing is not None:
            return existing, False
    reply_to = _reply_target(conversation=conversation, reply_to_id=reply_to_id)
    try:
        with transaction.atomic():
            message = _store_message(
                sender=sender,
                conversation=conversation,
                body=body,
                client_id=client_id,
                reply_to=reply_to,
                order=order,
                verdict=verdict,
                attachment_ids=attachment_ids,
            )
    except IntegrityError:
        existing = _replayed_message(sender=sender, client_id=client_id, conversation=conversation)
        if existing is None:
            raise
        return existing, False
    return message, True


def _replayed_message(*, sender, client_id, conversation) -> Message | None:
    existing = Message.objects.select_related("sender").filter(sender=sender, client_id=client_id).first()
    if existing is not None and existing.conversation_id != conversation.pk:
        raise Conflict(
            "This client_id was already used for a message in another conversation.", code="client_id_reused"
        )
    return existing


def _reply_target(*, conversation: Conversation, reply_to_id: int | None) -> Message | None:
    if reply_to_id is None:
        return None
    target = (
        Message.objects.filter(pk=reply_to_id, conversation=conversation).select_related("sender").first()
    )
    if target is None:
        raise NotFound("The message you reply to is not in this conversation.", code="invalid_reply_to")
    return target


def ensure_not_blocked(*, sender, recipient) -> None:
    blocks = {
        (b.blocker_id, b.blocked_id)
        for b in Block.objects.filter(
            Q(blocker=recipient, blocked=sender) | Q(blocker=sender, blocked=recipient)
        )
    }
    if (recipient.pk, sender.pk) in blocks:
        raise Forbidden(
            f"{recipient.profile.display_name} has blocked messages from you.", code="blocked_by_recipient"
        )
    if (sender.pk, recipient.pk) in blocks:
        raise Forbidden(
            "You blocked this user. Unblock them to write to them again.", code="recipient_blocked"
        )


def _store_message(
    *,
    sender,
    conversation: Conversation,
    body: str,
    client_id: uuid.UUID,
    reply_to: Message | None = None,
    kind: str = Message.Kind.TEXT,
    order=None,
    card: dict | None = None,
    flags: tuple[str, ...] = (),
    verdict: Verdict | None = None,
    automatic: bool = False,
    attachment_ids=(),
) -> Message:
    memberships = _lock_memberships(conversation)
    by_user = {m.user_id: m for m in memberships}
    if sender.pk not in by_user:
        raise NotFound("Conversation not found.")
    recipient_membership = next(m for m in memberships if m.user_id != sender.pk)
    if not recipient_membership.user.is_active:
        raise Forbidden(
            "This user's account is closed; they cannot receive messages.", code="recipient_inactive"
        )
    ensure_not_blocked(sender=sender, recipient=recipient_membership.user)
    files = claim_for_message(sender=sender, conversation=conversation, attachment_ids=attachment_ids)

    now = timezone.now()
    if order is None:
        # While an order between the two is open, what they write is about it.
        order_id = (
            Conversation.objects.filter(pk=conversation.pk).values_list("active_order_id", flat=True).first()
        )
    else:
        order_id = order.pk
    verdict = verdict or Verdict()
    new_contact = moderation_rules.is_new_contact(conversation)
    message = Message.objects.create(
        conversation=conversation,
        sender=sender,
        body=body,
        client_id=client_id,
        created_at=now,
        reply_to=reply_to,
        kind=kind,
        order_id=order_id,
        card=card or {},
        status={HOLD: Message.Status.HELD, REJECT: Message.Status.REJECTED}.get(
            verdict.action, Message.Status.VISIBLE
        ),
        moderation_reason=verdict.reason[:500],
        moderation_findings=[finding.as_dict() for finding in verdict.findings],
        is_automatic=automatic,
    )
    if files:
        attach(attachments=files, message=message)
    if new_contact and message.status != Message.Status.REJECTED:
        transaction.on_commit(lambda: moderation_rules.count_new_contact(sender))
    sender_membership = by_user[sender.pk]
    if not automatic:  # an auto-reply is not the seller typing: their draft stays
        sender_membership.draft, sender_membership.draft_updated_at = "", now
    if message.status != Message.Status.VISIBLE:
        # Held or rejected: only its sender knows of it, until a moderator approves it.
        Membership.objects.filter(pk=sender_membership.pk).update(
            draft="", draft_updated_at=now, last_message_at=now
        )
        if conversation.last_message_id is None:
            # Nothing was ever delivered here: the recipient's inbox does not list it yet.
            Membership.objects.filter(pk=recipient_membership.pk).update(last_message_at=None)
        append_events(
            [
                (
                    sender.pk,
                    "message.created",
                    {
                        "conversation_id": conversation.pk,
                        "unread_count": sender_membership.unread_count,
                        "message": message_payload(message),
                    },
                )
            ]
        )
        if message.status == Message.Status.HELD:
            notify(
                recipient=sender,
                kind=NotificationKind.MESSAGE_HELD,
                title=f"Your message to {display_name(recipient_membership.user)} is under review",
                body=excerpt(message.moderation_reason),
                url=message_url(message),
                dedupe_key=f"message:{message.pk}:held",
            )
        return message
    _deliver(message=message, memberships=memberships, flags=flags)
    return message


def _lock_memberships(conversation) -> list[Membership]:
    """Both memberships, locked in user order: writes into one conversation serialise here, so
    message ids in a thread are committed in order."""
    return list(
        Membership.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(conversation_id=conversation.pk)
        .order_by("user_id")
    )


# What delivering a message changes on each of the two memberships (with the flags it sets).
DELIVERY_FIELDS = (
    "unread_count", "last_read_message_id", "last_message_at", "archived_at", "deleted_at", "draft",
    "draft_updated_at",
)  # fmt: skip


def _deliver(
    *, message: Message, memberships: list[Membership], flags: tuple[str, ...] = (), approved: bool = False
) -> None:
    """Make a visible message count for both people: the conversation's last message, the
    recipient's unread count, both lists' order, and message.created for both."""
    # A new message's activity time is its own; an approved one arrives now.
    now = timezone.now() if approved else message.created_at
    conversation_id = message.conversation_id
    latest_id = (
        Conversation.objects.filter(pk=conversation_id).values_list("last_message_id", flat=True).first()
        if approved  # an older held message approved late does not replace a newer last message
        else None
    )
    if latest_id is None or message.pk > latest_id:
        Conversation.objects.filter(pk=conversation_id).update(last_message=message, last_message_at=now)
        if Message.conversation.is_cached(message):
            message.conversation.last_message, message.conversation.last_message_at = message, now
    sender_membership = next(m for m in memberships if m.user_id == message.sender_id)
    recipient_membership = next(m for m in memberships if m.user_id != message.sender_id)
    if not message.is_automatic:
        # Writing means having read the thread. An auto-reply does not: the seller has not seen
        # the buyer's message yet, so it stays unread for them (and the buyer sees no "Seen").
        sender_membership.unread_count = 0
        sender_membership.last_read_message_id = max(message.pk, sender_membership.last_read_message_id or 0)
        sender_membership.draft, sender_membership.draft_updated_at = "", now
    if message.pk <= (recipient_membership.last_read_message_id or 0):
        # Approved after the recipient read past it: it is unread again, from there on.
        recipient_membership.last_read_message_id = message.pk - 1
        recipient_membership.unread_count = (
            Message.objects.filter(
                conversation_id=conversation_id, pk__gte=message.pk, status=Message.Status.VISIBLE
            )
            .exclude(sender_id=recipient_membership.user_id)
            .count()
        )
    else:
        recipient_membership.unread_count += 1
    for membership in memberships:
        # A new message brings the conversation back from Archived, or from a user's deletion.
        membership.last_message_at = now
        membership.archived_at = membership.deleted_at = None
        for flag in flags:  # e.g. has_custom_offer: the conversation now shows under that filter
            setattr(membership, flag, True)
    # One plain UPDATE per membership: bulk_update's CASE … WHEN for two rows cost more CPU to
    # build than the two statements (12% of a busy server's time, py-spy in the reconnect storm).
    for membership in memberships:
        Membership.objects.filter(pk=membership.pk).update(
            **{field: getattr(membership, field) for field in (*DELIVERY_FIELDS, *flags)}
        )
    payload = message_payload(message)
    append_events(
        [
            (
                m.user_id,
                # The sender of an approved message already shows it (as under review).
                "message.updated" if approved and m.user_id == message.sender_id else "message.created",
                {"conversation_id": conversation_id, "unread_count": m.unread_count, "message": payload},
            )
            for m in memberships
        ]
    )
    if not approved:  # a message moderation held never counts for the response figures
        enqueue_task("inbox.record_for_response_figures", message.pk)
    if message.kind in AUTO_REPLY_TRIGGER_KINDS and auto_reply_due(
        conversation_id=conversation_id, seller_id=recipient_membership.user_id
    ):
        enqueue_task("inbox.send_auto_reply", message.pk)
    if message.kind in NEW_MESSAGE_KINDS:
        _notify_if_away(message=message, recipient=recipient_membership.user)


def _notify_if_away(*, message: Message, recipient) -> None:
    """A new message for someone with no page open (no socket): the bell, email, push. Who is
    online sees it arrive already."""
    try:
        online = recipient.pk in online_user_ids([recipient.pk])
    except Exception:  # the presence cache is down: better told twice than never
        logger.warning("presence unknown for user %s; notifying of message %s", recipient.pk, message.pk)
        online = False
    if online:
        return
    notify(
        recipient=recipient,
        kind=NotificationKind.NEW_MESSAGE,
        title=f"New message from {display_name(message.sender)}",
        body=excerpt(message.body),
        url=message_url(message),
        dedupe_key=f"message:{message.pk}",
        message=message,
    )


def deliver_approved_message(*, message: Message) -> Message:
    """A held message a moderator approved: it reaches the recipient as a normal new message,
    and its sender's copy turns visible. Call inside the approving transaction."""
    memberships = _lock_memberships(message.conversation)
    message = Message.objects.select_related("sender", "conversation", "reply_to__sender", "order").get(
        pk=message.pk
    )
    _deliver(message=message, memberships=memberships, approved=True)
    return message


def announce_moderation_outcome(*, message: Message) -> None:
    """Tell the sender what became of their held message (rejected, with the reason)."""
    append_events(
        [
            (
                message.sender_id,
                "message.updated",
                {"conversation_id": message.conversation_id, "message": message_payload(message)},
            )
        ]
    )


def mark_read(*, user, conversation: Conversation, up_to_message_id: int | None = None) -> Membership:
    """Mark the conversation read for `user` up to a message (default: the latest). Both
    participants are told, so the other one can show "Seen". Reading again changes nothing."""
    with transaction.atomic():
        memberships = list(
            Membership.objects.select_for_update().filter(conversation=conversation).order_by("user_id")
        )
        mine = next((m for m in memberships if m.user_id == user.pk), None)
        if mine is None:
            raise NotFound("Conversation not found.")
        latest_id = (
            Conversation.objects.filter(pk=conversation.pk).values_list("last_message_id", flat=True).first()
        )
        if latest_id is None:
            return mine
        target = latest_id if up_to_message_id is None else min(up_to_message_id, latest_id)
        already_read = mine.last_read_message_id or 0
        marked_unread_by_hand = mine.unread_count > 0 and already_read >= latest_id
        if target <= already_read and not marked_unread_by_hand:
            return mine
        target = max(target, already_read)
        unread_after = (
            0
            if target >= latest_id
            else Message.objects.filter(
                conversation=conversation, pk__gt=target, status=Message.Status.VISIBLE
            )
            .exclude(sender=user)
            .count()
        )
        mine.last_read_message_id = target
        mine.unread_count = unread_after
        mine.save(update_fields=["last_read_message_id", "unread_count"])
        # Like message.created, each participant's copy carries their own unread count.
        append_events(
            [
                (
                    m.user_id,
                    "conversation.read",
                    {
                        "conversation_id": conversation.pk,
                        "reader": user.username,
                        "last_read_message_id": target,
                        "unread_count": m.unread_count,
                    },
                )
                for m in memberships
            ]
        )
    return mine


def mark_unread(*, user, conversation: Conversation) -> Membership:
    """Show the conversation as unread again, for this user only: the other person's "Seen"
    does not go back."""
    with transaction.atomic():
        mine = Membership.objects.select_for_update().filter(conversation=conversation, user=user).first()
        if mine is None:
            raise NotFound("Conversation not found.")
        if mine.unread_count == 0 and conversation.last_message_id is not None:
            mine.unread_count = 1
            mine.save(update_fields=["unread_count"])
        announce_states(user=user, memberships=[mine])
    return mine


def post_card_message(
    *,
    sender,
    conversation: Conversation,
    kind: str,
    body: str,
    order=None,
    card: dict | None = None,
    flags: tuple[str, ...] = (),
) -> Message:
    """Post what another feature puts in a thread: an order update, an offer, a request or a
    call card. `body` is the plain-text summary shown in lists and notifications; `card` holds
    what the card shows and is kept current with update_card. Runs inside the caller's
    transaction, so the card and the thing it shows commit together."""
    if kind not in Message.Kind.values or kind == Message.Kind.TEXT:
        raise ValueError(f"not a card kind: {kind}")
    ensure_can_send(sender)
    moderation_rules.ensure_not_suspended(sender)
    return _store_message(
        sender=sender,
        conversation=conversation,
        body=body,
        client_id=uuid.uuid4(),
        kind=kind,
        order=order,
        card=card,
        flags=flags,
    )


def update_card(*, message: Message, card: dict) -> Message:
    """Change what a card shows (an offer accepted, a slot booked) and tell both participants."""
    Message.objects.filter(pk=message.pk).update(card=card)
    message.card = card
    message = Message.objects.select_related("conversation", "sender", "order", "reply_to__sender").get(
        pk=message.pk
    )
    _announce_message_change(message)
    return message


EDIT_WINDOW = timedelta(minutes=15)


def _own_message_in_window(*, user, message: Message, verb: str) -> None:
    if message.kind != Message.Kind.TEXT:
        raise Forbidden(f"Order updates, offers, requests and calls cannot be {verb}ed.", code="not_editable")
    if message.sender_id != user.pk:
        raise Forbidden(f"You can only {verb} your own messages.", code="not_your_message")
    if message.is_deleted:
        raise Conflict("This message was deleted.", code="message_deleted")
    if timezone.now() - message.created_at > EDIT_WINDOW:
        minutes = int(EDIT_WINDOW.total_seconds() // 60)
        raise Forbidden(
            f"Messages can be changed for {minutes} minutes after sending; too late to {verb} this one.",
            code="edit_window_closed",
        )


def _announce_message_change(message: Message) -> None:
    payload = message_payload(message)
    audience = (
        (message.conversation.user_low_id, message.conversation.user_high_id)
        if message.status == Message.Status.VISIBLE
        else (message.sender_id,)  # held or rejected: the recipient never had it
    )
    append_events(
        [
            (user_id, "message.updated", {"conversation_id": message.conversation_id, "message": payload})
            for user_id in audience
        ]
    )


def edit_message(*, user, message: Message, body: str) -> Message:
    """Change your own message's text within EDIT_WINDOW of sending it (an edit does not extend
    the window). The previous text is kept for admins."""
    validate_message_body(body)
    moderation_rules.ensure_not_suspended(user)
    recipient = _other_participant(message.conversation, user)
    verdict = moderation_scan(body, sender=user, recipient=recipient)
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(no_key=True, of=("self",))
            .select_related("conversation", "sender")
            .get(pk=message.pk)
        )
        _own_message_in_window(user=user, message=message, verb="edit")
        if message.status != Message.Status.VISIBLE:
            raise Conflict("A message under review or refused cannot be edited.", code="message_not_visible")
        if body == message.body:
            return message
        if not verdict.allowed:
            raise Forbidden(f"This edit was not saved. {verdict.rule}", code="edit_refused")
        MessageRevision.objects.create(message=message, body=message.body, change="edit")
        message.body, message.edited_at = body, timezone.now()
        message.save(update_fields=["body", "edited_at"])
        _announce_message_change(message)
    return message


def delete_message(*, user, message: Message) -> Message:
    """Delete your own message within EDIT_WINDOW: everyone sees a "message deleted" placeholder;
    the text stays in the database, visible to admins."""
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(no_key=True, of=("self",))
            .select_related("conversation", "sender")
            .get(pk=message.pk)
        )
        _own_message_in_window(user=user, message=message, verb="delete")
        MessageRevision.objects.create(message=message, body=message.body, change="delete")
        message.deleted_at = timezone.now()
        message.save(update_fields=["deleted_at"])
        # A deleted message the recipient had not read no longer waits for them.
        recipient_id = (
            message.conversation.user_high_id
            if message.conversation.user_low_id == user.pk
            else message.conversation.user_low_id
        )
        recipient = Membership.objects.select_for_update().get(
            conversation_id=message.conversation_id, user_id=recipient_id
        )
        visible = message.status == Message.Status.VISIBLE
        if visible and recipient.unread_count and message.pk > (recipient.last_read_message_id or 0):
            recipient.unread_count -= 1
            recipient.save(update_fields=["unread_count"])
        _announce_message_change(message)
    return message


def save_draft(*, user, conversation: Conversation, text: str) -> Membership:
    """Keep what the user has typed but not sent, per conversation, for their other devices."""
    if not isinstance(text, str):
        raise InvalidInput("A draft is text.", code="invalid_draft")
    if len(text) > settings.MESSAGE_MAX_LENGTH:
        raise InvalidInput(
            f"A draft is at most {settings.MESSAGE_MAX_LENGTH} characters, like a message.",
            code="draft_too_long",
        )
    if "\x00" in text:
        raise InvalidInput("The draft contains a NUL character.", code="invalid_draft")
    updated = Membership.objects.filter(conversation=conversation, user=user).update(
        draft=text, draft_updated_at=timezone.now()
    )
    if not updated:
        raise NotFound("Conversation not found.")
    return Membership.objects.get(conversation=conversation, user=user)


def announce_typing(*, user, conversation: Conversation) -> None:
    """Tell the other participant that `user` is typing. Live only: nothing is stored. Between
    two people where one blocked the other, nothing is sent."""
    other_id = conversation.user_high_id if conversation.user_low_id == user.pk else conversation.user_low_id
    if Block.objects.filter(
        Q(blocker_id=user.pk, blocked_id=other_id) | Q(blocker_id=other_id, blocked_id=user.pk)
    ).exists():
        return
    push_ephemeral(other_id, {"type": "typing", "conversation_id": conversation.pk, "user": user.username})


def prune_event_log(*, older_than: timedelta | None = None) -> int:
    """Delete events past the retention period. A client asking for a pruned cursor is told to
    reload (410) instead of silently missing events."""
    if older_than is None:
        older_than = timedelta(days=settings.EVENT_LOG_RETENTION_DAYS)
    cutoff = timezone.now() - older_than
    deleted_total = 0
    user_ids = Event.objects.filter(created_at__lt=cutoff).values_list("user_id", flat=True).distinct()
    for user_id in list(user_ids):
        with transaction.atomic():
            last_pruned = (
                Event.objects.filter(user_id=user_id, created_at__lt=cutoff)
                .order_by("-cursor")
                .values_list("cursor", flat=True)
                .first()
            )
            if last_pruned is None:
                continue
            deleted, _ = Event.objects.filter(user_id=user_id, cursor__lte=last_pruned).delete()
            EventLogHead.objects.filter(user_id=user_id, pruned_through__lt=last_pruned).update(
                pruned_through=last_pruned
            )
            deleted_total += deleted
    return deleted_total
