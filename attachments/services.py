"""Every write about attachments: uploads (streamed locally, or multipart straight to the
bucket), the checks before a file may be sent, attaching to a message, downloads (access time,
restores of archived files), archival and purge. Reads are in selectors.py."""

import logging
import mimetypes
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import SuspiciousFileOperation
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.text import get_valid_filename

from marketplace.errors import Conflict, DomainError, Forbidden, Gone, InvalidInput, NotFound
from marketplace.patterns import SPACE
from outbox.services import enqueue_task

from .models import Attachment
from .storage import PART_SALT, UploadIncomplete, blob_store
from .thumbnails import DECODER_FOR_TYPE

SNIFF_BYTES = 8192
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
NAME_MAX = 255
# What clean_name accepts, as a JSON Schema pattern for the API (with maxLength NAME_MAX): no
# control or bidi characters, `/` or `\`; not only spaces; once the spaces around are dropped,
# not "." nor starting with "..". tests/test_api_schema.py checks that the two agree.
_REFUSED = r"\x00-\x1f\x7f/\\\u200e\u200f\u202a-\u202e\u2066-\u2069"
NAME_PATTERN = (
    rf"^[{SPACE}]*"  # spaces around are dropped
    rf"(?:[^{SPACE}.{_REFUSED}][^{_REFUSED}]*"  # then a first character that is no dot,
    rf"|\.(?!\.)[^{_REFUSED}]*[^{SPACE}{_REFUSED}][^{_REFUSED}]*)"  # or one dot and more
    rf"[{SPACE}]*$"
)
MAX_PARTS = 10_000  # S3's limit for one multipart upload
# Types a browser would run or render as a page. None is allowed by default; should
# ATTACHMENT_ALLOWED_TYPES admit one, its downloads still go out as plain bytes.
ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/xsl",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "application/x-shockwave-flash",
    }
)

logger = logging.getLogger(__name__)


def clean_name(name) -> str:
    """A file name as the user wrote it, kept for display. Refused: not text, empty, longer than
    255 characters, NUL or other control characters, path separators or '..' parts."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("Give the file a name.", code="invalid_name")
    if len(name) > NAME_MAX:  # as sent: the limit a client sees
        raise InvalidInput(
            f"A file name is at most {NAME_MAX} characters; this one has {len(name)}.", code="invalid_name"
        )
    name = name.strip()
    if any(ord(character) < 32 or ord(character) == 127 or character in BIDI_CONTROLS for character in name):
        # Bidirectional overrides can disguise an extension ("photo\u202egpj.exe").
        raise InvalidInput("A file name cannot contain control characters.", code="invalid_name")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith(".."):
        raise InvalidInput("A file name cannot contain a path (/, \\ or ..).", code="invalid_name")
    return name


def storage_key(name: str) -> str:
    """Where the bytes go: a fresh folder per file and an ASCII-safe form of the name (the
    original is kept in the database, for display and for the download's file name)."""
    try:
        safe = get_valid_filename(name) if name.isascii() else ""
    except SuspiciousFileOperation:  # nothing file-safe in it, e.g. ","
        safe = ""
    stem, dot, extension = safe.rpartition(".")
    safe = (f"{stem[:80]}.{extension[:10]}" if dot and stem else safe[:90]).lstrip(".") or "file"
    return f"{timezone.now():%Y/%m}/{uuid.uuid4().hex}/{safe}"


def _check_size(size) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise InvalidInput("The file is empty.", code="empty_file")
    if size > settings.ATTACHMENT_MAX_BYTES:
        raise InvalidInput(
            f"A file is at most {settings.ATTACHMENT_MAX_BYTES:,} bytes; this one has {size:,}.",
            code="file_too_large",
        )
    return size


def sniff_type(head: bytes) -> str:
    import magic

    return magic.from_buffer(head, mime=True) or "application/octet-stream"


def _check_type(name: str, sniffed: str) -> None:
    # Refused by a rule on the content, as moderation refuses a text (403 text_refused): the
    # request itself was well formed.
    if sniffed not in settings.ATTACHMENT_ALLOWED_TYPES:
        raise Forbidden(f"Files of type {sniffed} cannot be sent.", code="file_type_not_allowed")
    named, _encoding = mimetypes.guess_type(name, strict=False)
    if named and named.split("/")[0] != sniffed.split("/")[0] and sniffed not in ("application/zip",):
        raise Forbidden(
            f"“{name}” is named like {named} but its content is {sniffed}.", code="file_type_mismatch"
        )


def _abort_open_upload(store, attachment: Attachment) -> None:
    """An unfinished multipart upload keeps its parts (billed) in the bucket until aborted."""
    if attachment.upload_id and attachment.status == Attachment.Status.UPLOADING:
        store.abort_upload(attachment.key, attachment.upload_id)


def _discard(attachment: Attachment) -> None:
    store = blob_store()
    _abort_open_upload(store, attachment)
    store.delete(attachment.key)
    attachment.delete()


def _finish(attachment: Attachment) -> Attachment:
    """The bytes are stored: check what they are; refuse and delete them, or mark it ready."""
    store = blob_store()
    try:
        size = _check_size(store.size(attachment.key))
        if attachment.size and size != attachment.size:
            raise Conflict(
                f"The upload has {size:,} bytes, not the {attachment.size:,} announced.", code="size_mismatch"
            )
        sniffed = sniff_type(store.head(attachment.key, SNIFF_BYTES))
        _check_type(attachment.name, sniffed)
    except DomainError:
        _discard(attachment)
        raise
    attachment.size, attachment.content_type, attachment.status = size, sniffed, Attachment.Status.READY
    attachment.upload_id = ""
    attachment.save(update_fields=["size", "content_type", "status", "upload_id"])
    if sniffed in DECODER_FOR_TYPE:
        enqueue_task("attachments.make_thumbnail", attachment.pk)
    return attachment


def _limited(chunks, limit: int):
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise InvalidInput(f"A file is at most {limit:,} bytes.", code="file_too_large")
        yield chunk


def upload_stream(*, user, conversation, name, size, chunks) -> Attachment:
    """One request with the whole file, streamed to storage chunk by chunk, then checked;
    nothing is kept if anything fails. For files up to one part: daphne holds a request body
    in memory, so larger files go in parts (start_upload)."""
    name, size = clean_name(name), _check_size(size)
    if size > settings.ATTACHMENT_PART_BYTES:
        raise InvalidInput(
            f"Files over {settings.ATTACHMENT_PART_BYTES:,} bytes are uploaded in parts: "
            "POST /api/v1/conversations/{id}/uploads.",
            code="use_multipart",
        )
    attachment = Attachment.objects.create(
        uploader=user, conversation=conversation, name=name, key=storage_key(name), size=size
    )
    try:
        blob_store().save(attachment.key, _limited(chunks, min(size, settings.ATTACHMENT_MAX_BYTES)))
    except BaseException:
        _discard(attachment)
        raise
    return _finish(attachment)


@dataclass(frozen=True)
class StartedUpload:
    attachment: Attachment
    part_size: int
    part_count: int


def start_upload(*, user, conversation, name, size, content_type: str = "") -> StartedUpload:
    """The bucket: create a multipart upload the browser sends parts to (presigned URLs)."""
    store = blob_store()
    name, size = clean_name(name), _check_size(size)
    part_size = max(settings.ATTACHMENT_PART_BYTES, -(-size // MAX_PARTS))
    key = storage_key(name)
    upload_id = store.create_upload(key, content_type if isinstance(content_type, str) else "")
    attachment = Attachment.objects.create(
        uploader=user, conversation=conversation, name=name, key=key, size=size, upload_id=upload_id
    )
    return StartedUpload(attachment, part_size, -(-size // part_size))


def _own_upload(*, user, attachment_id) -> Attachment:
    attachment = Attachment.objects.filter(
        pk=attachment_id, uploader=user, status=Attachment.Status.UPLOADING
    ).first()
    if attachment is None or not attachment.upload_id:
        raise NotFound("Upload not found.")
    return attachment


def _part_count(size: int) -> int:
    return -(-size // max(settings.ATTACHMENT_PART_BYTES, -(-size // MAX_PARTS)))


def sign_parts(*, user, attachment_id, part_numbers) -> dict[int, str]:
    attachment = _own_upload(user=user, attachment_id=attachment_id)
    part_count = _part_count(attachment.size)
    if not part_numbers or any(not isinstance(n, int) or n < 1 for n in part_numbers):
        raise InvalidInput(f"Part numbers go from 1 to {part_count}.", code="invalid_part")
    if any(n > part_count for n in part_numbers):  # past this upload's own parts
        raise Conflict(f"Part numbers go from 1 to {part_count}.", code="invalid_part")
    store = blob_store()
    return {n: store.sign_part(attachment.key, attachment.upload_id, n) for n in sorted(set(part_numbers))}


def receive_part(*, token: str, size, chunks) -> str:
    """The local store's part URL: the signed token names the upload and the part (it is the
    credential, valid ATTACHMENT_URL_EXPIRE_SECONDS). Returns the part's ETag."""
    try:
        signed = signing.loads(token, salt=PART_SALT, max_age=settings.ATTACHMENT_URL_EXPIRE_SECONDS)
    except signing.SignatureExpired as exc:
        raise Forbidden("This part URL has expired: ask for a new one.", code="url_expired") from exc
    except signing.BadSignature as exc:
        raise Forbidden("This part URL is not valid.", code="bad_signature") from exc
    attachment = Attachment.objects.filter(upload_id=signed["u"], status=Attachment.Status.UPLOADING).first()
    if attachment is None:
        raise NotFound("Upload not found.")
    part_size = max(settings.ATTACHMENT_PART_BYTES, -(-attachment.size // MAX_PARTS))
    if not isinstance(size, int) or not 0 < size <= part_size:
        raise InvalidInput(f"A part is 1 to {part_size:,} bytes.", code="invalid_part")
    try:
        return blob_store().save_part(signed["u"], signed["n"], _limited(chunks, size))
    except UploadIncomplete as exc:
        raise NotFound("Upload not found.") from exc


def complete_upload(*, user, attachment_id, parts: list[tuple[int, str]]) -> Attachment:
    """Assemble the parts, then check the whole file. Someone else's upload is not found."""
    attachment = _own_upload(user=user, attachment_id=attachment_id)
    missing = sorted(set(range(1, _part_count(attachment.size) + 1)) - {n for n, _etag in parts})
    if missing:
        # S3 would assemble the parts listed (1 and 3 without 2) into a shorter file, which the
        # size check then deletes, upload and all. Refused first: the upload stays resumable.
        raise Conflict(
            f"The upload is missing parts {', '.join(map(str, missing[:20]))}: send them, then complete.",
            code="upload_incomplete",
            missing_parts=missing,
        )
    store = blob_store()
    try:
        store.complete_upload(attachment.key, attachment.upload_id, sorted(parts))
    except UploadIncomplete as exc:
        raise Conflict(
            "The upload could not be completed: a part is missing or its ETag is wrong. Send the missing "
            "parts again, then complete.",
            code="upload_incomplete",
        ) from exc
    attachment.status = Attachment.Status.READY  # assembled: no multipart upload left to abort
    return _finish(attachment)


def abort_upload(*, user, attachment_id) -> None:
    attachment = Attachment.objects.filter(
        pk=attachment_id, uploader=user, status__in=(Attachment.Status.UPLOADING, Attachment.Status.READY)
    ).first()
    if attachment is None:
        raise NotFound("Upload not found.")
    _discard(attachment)


def claim_for_message(*, sender, conversation, attachment_ids) -> list[Attachment]:
    """The uploads a message will carry: the sender's own, in this conversation, ready, not
    already sent, and not too many. Locked until the message is stored."""
    if not attachment_ids:
        return []
    ids = list(dict.fromkeys(attachment_ids))
    if len(attachment_ids) > settings.ATTACHMENTS_PER_MESSAGE:  # as sent, repeats included
        raise InvalidInput(
            f"A message carries at most {settings.ATTACHMENTS_PER_MESSAGE} files.",
            code="too_many_attachments",
        )
    claimed = list(
        Attachment.objects.select_for_update()
        .filter(pk__in=ids, uploader=sender, conversation=conversation, status=Attachment.Status.READY)
        .order_by("pk")
    )
    if len(claimed) != len(ids):  # 409: whether an upload may be sent is its state
        raise Conflict(
            "A file is not ready to send: it is still uploading, was already sent, or is not yours.",
            code="invalid_attachment",
        )
    return claimed


def attach(*, attachments: list[Attachment], message) -> None:
    Attachment.objects.filter(pk__in=[a.pk for a in attachments]).update(
        message=message, status=Attachment.Status.ATTACHED
    )


@dataclass(frozen=True)
class Download:
    attachment: Attachment
    url: str | None  # a presigned URL (bucket), or None: stream it (local)


def download(*, user, attachment: Attachment) -> Download:
    """Open a file for a participant (the selector checked access): record the access, and
    hand out a short-lived URL or the bytes. An archived file starts its restore instead."""
    store = blob_store()
    if attachment.status == Attachment.Status.UPLOADING:  # its uploader sees it: no bytes yet
        raise Conflict("This file is still being uploaded.", code="upload_in_progress")
    if attachment.status == Attachment.Status.EXPIRED:
        raise Gone(
            f"This file has expired: files are deleted {settings.ATTACHMENT_PURGE_AFTER_DAYS} days after "
            "they are sent.",
            code="file_expired",
        )
    refusal = None
    with transaction.atomic():
        attachment = Attachment.objects.select_for_update().get(pk=attachment.pk)
        if attachment.status == Attachment.Status.RESTORING:
            state = store.restore_state(attachment.key, ready_at=attachment.restore_ready_at)
            if state.done:
                attachment.status, attachment.restored_until = (
                    Attachment.Status.ATTACHED,
                    state.restored_until,
                )
            else:
                refusal = _restoring(attachment)
        elif attachment.status == Attachment.Status.ARCHIVED or (
            attachment.restored_until is not None and attachment.restored_until <= timezone.now()
        ):
            attachment.status = Attachment.Status.RESTORING
            attachment.restore_ready_at = store.start_restore(attachment.key)
            attachment.restore_requested_by = user
            attachment.restored_until = None
            refusal = _restoring(attachment, started=True)
        if refusal is None:
            attachment.last_accessed_at = timezone.now()
        attachment.save(
            update_fields=[
                "status",
                "restore_ready_at",
                "restore_requested_by",
                "restored_until",
                "last_accessed_at",
            ]
        )
    if refusal is not None:
        raise refusal
    if not store.signed_downloads:
        return Download(attachment, None)
    url = store.download_url(
        attachment.key,
        filename_header=content_disposition(attachment.name),
        content_type=served_type(attachment.content_type),
    )
    return Download(attachment, url)


def finish_restores(*, now=None) -> int:
    """For the beat: restores S3 (or the local store's delay) has finished become downloadable,
    and whoever asked is told. Returns how many finished."""
    store = blob_store()
    finished = 0
    for attachment in Attachment.objects.filter(status=Attachment.Status.RESTORING).order_by("pk"):
        with transaction.atomic():
            locked = (
                Attachment.objects.select_for_update(skip_locked=True)
                .filter(pk=attachment.pk, status=Attachment.Status.RESTORING)
                .first()
            )
            if locked is None:
                continue
            state = store.restore_state(locked.key, ready_at=locked.restore_ready_at)
            if not state.done:
                continue
            locked.status, locked.restored_until = Attachment.Status.ATTACHED, state.restored_until
            # Someone asked for it: without a fresh access time, the next archive_idle run (local
            # store: restored_until is None) would archive it again before they could download it.
            locked.last_accessed_at = now or timezone.now()
            locked.save(update_fields=["status", "restored_until", "last_accessed_at"])
            _notify_restored(locked)
            finished += 1
    return finished


def _notify_restored(attachment: Attachment) -> None:
    from notifications.models import Kind
    from notifications.services import conversation_url, notify

    if attachment.restore_requested_by_id is None:
        return
    notify(
        recipient=attachment.restore_requested_by,
        kind=Kind.FILE_RESTORED,
        title=f"“{attachment.name}” is back from the archive",
        body="You can download it now.",
        url=conversation_url(attachment.conversation_id, attachment.message_id),
        dedupe_key=f"attachment:{attachment.pk}:restored:{attachment.restore_ready_at:%s}",
    )


def _restoring(attachment: Attachment, *, started: bool = False) -> Conflict:
    ready = timezone.localtime(attachment.restore_ready_at)
    first = (
        "This file was archived, as nobody downloaded it for a long time; its restore has started."
        if started
        else ("This file is being restored from the archive.")
    )
    return Conflict(
        f"{first} It will be ready around {ready:%b %-d, %H:%M}; you will be notified.",
        code="restore_in_progress",
        ready_at=ready.isoformat(),
    )


def served_type(content_type: str) -> str:
    """The Content-Type a download goes out with: the sniffed one, unless a browser would run it."""
    if not content_type or content_type.split(";")[0].strip().lower() in ACTIVE_TYPES:
        return "application/octet-stream"
    return content_type


def content_disposition(name: str) -> str:
    """`attachment` with the original name: plain ASCII fallback plus RFC 5987 UTF-8."""
    from urllib.parse import quote

    fallback = name.encode("ascii", "replace").decode().replace('"', "'").replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"


def idle_since():
    return Coalesce(F("last_accessed_at"), F("created_at"))


def archive_idle(*, dry_run: bool = False, batch_size: int = 100, now=None):
    """Archive sent files nobody opened for ATTACHMENT_ARCHIVE_AFTER_DAYS, a batch at a time;
    yields how many each batch archived. Rows another run holds are skipped (SKIP LOCKED), and
    each row is re-checked under its lock, so two runs at once never archive a file twice."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.ATTACHMENT_ARCHIVE_AFTER_DAYS)
    due = Q(status=Attachment.Status.ATTACHED) & (Q(restored_until__isnull=True) | Q(restored_until__lte=now))
    candidates = Attachment.objects.annotate(idle=idle_since()).filter(due, idle__lte=cutoff)
    if dry_run:
        yield candidates.count()
        return
    store = blob_store()
    while True:
        with transaction.atomic():
            batch = list(candidates.select_for_update(skip_locked=True).order_by("pk")[:batch_size])
            if not batch:
                return
            for attachment in batch:
                store.archive(attachment.key)
            Attachment.objects.filter(pk__in=[a.pk for a in batch]).update(
                status=Attachment.Status.ARCHIVED, archived_at=now
            )
        yield len(batch)


def purge_old(*, dry_run: bool = False, batch_size: int = 100, now=None):
    """Delete files older than ATTACHMENT_PURGE_AFTER_DAYS from storage (the message keeps a
    "file expired" placeholder), and uploads never sent within a day. Yields per batch."""
    now = now or timezone.now()
    old = Q(created_at__lte=now - timedelta(days=settings.ATTACHMENT_PURGE_AFTER_DAYS)) & ~Q(
        status=Attachment.Status.EXPIRED
    )
    abandoned = Q(
        status__in=(Attachment.Status.UPLOADING, Attachment.Status.READY),
        created_at__lte=now - timedelta(days=1),
    )
    candidates = Attachment.objects.filter(old | abandoned)
    if dry_run:
        yield candidates.count()
        return
    store = blob_store()
    while True:
        with transaction.atomic():
            batch = list(candidates.select_for_update(skip_locked=True).order_by("pk")[:batch_size])
            if not batch:
                return
            for attachment in batch:
                _abort_open_upload(store, attachment)
                for key in (attachment.key, attachment.thumbnail_key):
                    if key:
                        store.delete(key)
            unsent = [a.pk for a in batch if a.message_id is None]
            Attachment.objects.filter(pk__in=unsent).delete()
            Attachment.objects.filter(pk__in=[a.pk for a in batch if a.message_id is not None]).update(
                status=Attachment.Status.EXPIRED, purged_at=now, thumbnail_key=""
            )
        yield len(batch)
