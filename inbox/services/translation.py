"""Translating a received message into the reader's language, cached per message and language."""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from marketplace.accounts.services import READING_LANGUAGES
from marketplace.errors import Conflict, InvalidInput

from ..models import Message, MessageTranslation
from ..translation import detect_language, language_name, translate_text


@dataclass(frozen=True)
class TranslatedMessage:
    message_id: int
    source_language: str
    target_language: str
    text: str
    backend: str | None  # None when nothing needed translating
    original: str
    note: str = ""  # "Already in English." when the message is in the target language

    @property
    def source_name(self) -> str:
        return language_name(self.source_language)

    @property
    def target_name(self) -> str:
        return language_name(self.target_language)


def _is_fresh(translation: MessageTranslation, message: Message) -> bool:
    """A translation made before the message's last edit is of an older text."""
    return message.edited_at is None or translation.created_at >= message.edited_at


def _cache(*, message: Message, body: str, source: str, target: str, text: str, backend: str):
    """Store the translation of `body`, unless the message was edited while the engine worked.
    The message row is locked as edit_message locks it, so an edit lands either before (the body
    differs: nothing is stored) or after (its edited_at is later than the stored created_at)."""
    with transaction.atomic():
        current = Message.objects.select_for_update(no_key=True).only("body").filter(pk=message.pk).first()
        if current is None or current.body != body:
            return
        # update_or_create is race-safe (two readers translating at once store one row), and
        # replaces a translation of an earlier text.
        MessageTranslation.objects.update_or_create(
            message_id=message.pk,
            target_language=target,
            defaults={
                "source_language": source,
                "text": text,
                "backend": backend,
                "created_at": timezone.now(),
            },
        )


def translate_message(*, user, message: Message, target_language: str | None = None) -> TranslatedMessage:
    """The text of a message `user` received, in `target_language` (default: their reading
    language). Only the other person's messages, still visible and not deleted; `message` comes
    from selectors.message_for_user, which already refused strangers. Each message is translated
    once per language (again after an edit); a message already in the target language comes back
    as it is, with a note."""
    target = target_language or user.profile.reading_language
    if target not in READING_LANGUAGES:
        raise InvalidInput(
            f"Choose a language to translate into among {', '.join(sorted(READING_LANGUAGES))}.",
            code="invalid_language",
        )
    if message.sender_id == user.pk:  # 409 like every refusal about the message itself
        raise Conflict("You wrote this message: Translate is for messages you receive.", code="own_message")
    if message.is_deleted:
        raise Conflict("This message was deleted.", code="message_deleted")
    if message.status != Message.Status.VISIBLE:
        raise Conflict("This message is held for review and cannot be translated yet.", code="message_held")

    body = message.body
    cached = MessageTranslation.objects.filter(message_id=message.pk, target_language=target).first()
    if cached is not None and _is_fresh(cached, message):
        return TranslatedMessage(
            message_id=message.pk,
            source_language=cached.source_language,
            target_language=target,
            text=cached.text,
            backend=cached.backend,
            original=body,
        )

    source = detect_language(body)
    if source is None:
        raise Conflict(
            "We could not tell which language this message is written in.", code="language_undetected"
        )
    if source == target:
        return TranslatedMessage(
            message_id=message.pk,
            source_language=source,
            target_language=target,
            text=body,
            backend=None,
            original=body,
            note=f"Already in {language_name(target)}.",
        )

    text, backend = translate_text(body, source=source, target=target)
    _cache(message=message, body=body, source=source, target=target, text=text, backend=backend)
    return TranslatedMessage(
        message_id=message.pk,
        source_language=source,
        target_language=target,
        text=text,
        backend=backend,
        original=body,
    )
