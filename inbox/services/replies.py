"""A seller's saved texts: the auto-reply sent to a buyer's first contact, and quick responses
inserted into the composer. Both may hold placeholders (inbox.placeholders)."""

import uuid

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from marketplace.errors import Conflict, Forbidden, InvalidInput
from moderation.scanning import scan

from ..models import AutoReply, Message, QuickResponse
from ..placeholders import (
    AUTO_REPLY_PLACEHOLDERS,
    QUICK_RESPONSE_PLACEHOLDERS,
    ensure_known_placeholders,
    fill_placeholders,
    placeholder_values,
)
from ..selectors import auto_reply_due
from .messaging import _lock_memberships, _store_message, ensure_not_blocked, validate_message_body

QUICK_RESPONSES_MAX = 100
QUICK_RESPONSE_TITLE_MAX = 60


def _ensure_seller(user) -> None:
    if not user.profile.is_seller:
        raise Forbidden("Auto-replies and quick responses are seller tools.", code="not_a_seller")


def save_auto_reply(*, user, body: str, enabled: bool) -> AutoReply:
    """Write or switch the seller's auto-reply. Its text is checked by moderation now, once:
    an auto-reply is sent without a reviewer, so a text that would be held is refused."""
    _ensure_seller(user)
    if not isinstance(enabled, bool):
        raise InvalidInput("enabled is true or false.", code="invalid_preference")
    if not isinstance(body, str):
        raise InvalidInput("The auto-reply must be text.", code="invalid_body")
    if body.strip() or enabled or len(body) > settings.MESSAGE_MAX_LENGTH:
        validate_message_body(body)  # as sent: its limits are the ones a client sees
        ensure_known_placeholders(body, AUTO_REPLY_PLACEHOLDERS)
    body = body.strip()
    if body or enabled:
        verdict = scan(body, sender=user, recipient=None)
        if not verdict.allowed:
            raise Forbidden(f"Your auto-reply was not saved. {verdict.rule}", code="text_refused")
    auto_reply, _created = AutoReply.objects.update_or_create(
        user=user, defaults={"body": body, "enabled": enabled, "updated_at": timezone.now()}
    )
    return auto_reply


def send_auto_reply(*, trigger_message_id: int) -> Message | None:
    """Answer a buyer's first contact with the seller's auto-reply, marked as automatic, once
    per conversation: not if the seller has written there since (by hand or automatically),
    switched it off, or if either blocked the other. Returns the message sent, if any."""
    trigger = (
        Message.objects.select_related("conversation", "sender__profile")
        .filter(pk=trigger_message_id, status=Message.Status.VISIBLE)
        .first()
    )
    if trigger is None:
        return None
    conversation = trigger.conversation
    with transaction.atomic():
        memberships = _lock_memberships(conversation)  # serialises with the seller's own replies
        seller = next((m.user for m in memberships if m.user_id != trigger.sender_id), None)
        if seller is None or not seller.is_active:
            return None
        if not auto_reply_due(conversation_id=conversation.pk, seller_id=seller.pk):
            return None
        auto_reply = AutoReply.objects.select_related("user__profile").get(user=seller)
        if not auto_reply.user.profile.is_seller:
            return None
        try:
            ensure_not_blocked(sender=seller, recipient=trigger.sender)
        except Forbidden:
            return None
        values = placeholder_values(seller=auto_reply.user, buyer=trigger.sender)
        try:
            with transaction.atomic():
                return _store_message(
                    sender=seller,
                    conversation=conversation,
                    body=fill_placeholders(auto_reply.body, values),
                    client_id=uuid.uuid5(uuid.NAMESPACE_OID, f"auto-reply:{conversation.pk}:{seller.pk}"),
                    automatic=True,
                )
        except IntegrityError:  # one auto-reply per conversation: another worker sent it
            return None


def _clean_quick_response(*, title, body) -> tuple[str, str]:
    if not isinstance(title, str) or not title.strip():
        raise InvalidInput("Give the quick response a title.", code="invalid_title")
    if len(title) > QUICK_RESPONSE_TITLE_MAX:  # as sent: the limit a client sees
        raise InvalidInput(f"A title is at most {QUICK_RESPONSE_TITLE_MAX} characters.", code="invalid_title")
    if "\x00" in title:  # PostgreSQL refuses a NUL, even in the lookup for a taken title
        raise InvalidInput("The title contains a NUL character.", code="invalid_title")
    title = title.strip()
    validate_message_body(body)
    ensure_known_placeholders(body, QUICK_RESPONSE_PLACEHOLDERS)
    return title, body


def _title_taken_error(title: str) -> Conflict:
    return Conflict(f"You already have a quick response called {title!r}.", code="title_taken")


def _ensure_title_free(user, title: str, *, exclude_id: int | None = None) -> None:
    others = QuickResponse.objects.filter(user=user, title__iexact=title)
    if exclude_id is not None:
        others = others.exclude(pk=exclude_id)
    if others.exists():
        raise _title_taken_error(title)


def create_quick_response(*, user, title, body) -> QuickResponse:
    _ensure_seller(user)
    title, body = _clean_quick_response(title=title, body=body)
    with transaction.atomic():
        if QuickResponse.objects.filter(user=user).count() >= QUICK_RESPONSES_MAX:
            raise Conflict(
                f"You can keep at most {QUICK_RESPONSES_MAX} quick responses; delete one first.",
                code="too_many_quick_responses",
            )
        _ensure_title_free(user, title)
        try:
            with transaction.atomic():
                return QuickResponse.objects.create(user=user, title=title, body=body)
        except IntegrityError as exc:  # the same title saved twice at once
            raise _title_taken_error(title) from exc


def update_quick_response(*, quick_response: QuickResponse, title=None, body=None) -> QuickResponse:
    """Change the title, the text or both (None: unchanged)."""
    title, body = _clean_quick_response(
        title=quick_response.title if title is None else title,
        body=quick_response.body if body is None else body,
    )
    _ensure_title_free(quick_response.user, title, exclude_id=quick_response.pk)
    quick_response.title, quick_response.body, quick_response.updated_at = title, body, timezone.now()
    try:
        with transaction.atomic():
            quick_response.save(update_fields=["title", "body", "updated_at"])
    except IntegrityError as exc:
        raise _title_taken_error(title) from exc
    return quick_response


def delete_quick_response(*, quick_response: QuickResponse) -> None:
    quick_response.delete()
