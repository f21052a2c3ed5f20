"""Attachments with the embedded default store (files under MEDIA_ROOT), checked the way users and
integrators see them: the upload PUT, sending with a message, the thread page, downloads, access,
thumbnails, archive and restore, purge, refusals, and memory during a large upload to daphne."""

import io
import shutil
import threading
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from django.db import connection
from django.utils import timezone
from PIL import Image

from attachments import services
from attachments.models import Attachment
from inbox.models import Message
from notifications.models import Notification
from tests.factories import bearer_headers, buyer_opens_conversation

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< >>\n%%EOF\n"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 100
MiB = 1024 * 1024


def png_bytes(size=(640, 480), image_format="PNG") -> bytes:
    """A real image, PNG unless `image_format` names another of Pillow's formats."""
    output = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(output, format=image_format)
    return output.getvalue()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def conversation(buyer, seller):
    return buyer_opens_conversation(buyer, seller)


def stored_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def live_path(root: Path, attachment: Attachment) -> Path:
    return root / "attachments" / attachment.key


def archived_path(root: Path, attachment: Attachment) -> Path:
    return root / "attachments-archive" / attachment.key


def put_file(client, user, conversation_id, name, data, *, raw_name=False, **extra):
    query = name if raw_name else quote(name, safe="")
    if not data:
        extra.setdefault("CONTENT_LENGTH", "0")  # as HTTP clients send it; Django's test client omits it
    return client.put(
        f"/api/v1/conversations/{conversation_id}/attachments?name={query}",
        data=data,
        content_type="application/octet-stream",
        **bearer_headers(user),
        **extra,
    )


def upload(client, user, conversation, name, data) -> dict:
    response = put_file(client, user, conversation.pk, name, data)
    assert response.status_code == 201, response.content
    return response.json()


def send(client, user, conversation, attachment_ids, body=""):
    return client.post(
        f"/api/v1/conversations/{conversation.pk}/messages",
        {"body": body, "attachments": attachment_ids},
        content_type="application/json",
        **bearer_headers(user),
    )


def sent_file(client, user, conversation, name="Résumé final.pdf", data=PDF) -> Attachment:
    uploaded = upload(client, user, conversation, name, data)
    assert send(client, user, conversation, [uploaded["id"]]).status_code == 201
    return Attachment.objects.get(pk=uploaded["id"])


def content(response) -> bytes:
    return b"".join(response.streaming_content)


def page(client, user, path):
    client.force_login(user)
    try:
        return client.get(path)
    finally:
        client.logout()


def assert_refused(response, status: int, code: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == code, body
    assert body["detail"]


# --- 1. Upload, send, see, download ------------------------------------------------------------


def test_a_file_sent_with_a_message_is_seen_and_downloaded_by_the_other_participant(
    client, buyer, seller, conversation, media_root
):
    name = "Résumé final.pdf"
    uploaded = upload(client, buyer, conversation, name, PDF)
    assert uploaded["name"] == name
    assert uploaded["size"] == len(PDF)
    assert uploaded["content_type"] == "application/pdf"
    assert uploaded["status"] == "ready"
    assert uploaded["download_url"] == f"/api/v1/attachments/{uploaded['id']}/download"
    attachment = Attachment.objects.get(pk=uploaded["id"])
    assert live_path(media_root, attachment).read_bytes() == PDF
    assert name not in attachment.key  # the original name is shown, never used as a path

    response = send(client, buyer, conversation, [attachment.pk])
    assert response.status_code == 201, response.content
    message = response.json()
    assert message["body"] == ""
    assert [(a["id"], a["name"], a["status"]) for a in message["attachments"]] == [
        (attachment.pk, name, "attached")
    ]

    thread = page(client, seller, f"/inbox/{conversation.pk}/")
    assert thread.status_code == 200
    html = thread.content.decode()
    assert name in html
    assert f'href="/files/{attachment.pk}/"' in html

    listed = client.get(f"/api/v1/conversations/{conversation.pk}/messages", **bearer_headers(seller))
    carried = [a for m in listed.json()["items"] for a in m["attachments"]]
    assert [(a["id"], a["name"], a["size"]) for a in carried] == [(attachment.pk, name, len(PDF))]

    assert Attachment.objects.get(pk=attachment.pk).last_accessed_at is None
    before = timezone.now()
    client.force_login(seller)
    from_site = client.get(f"/files/{attachment.pk}/")
    client.logout()
    from_api = client.get(f"/api/v1/attachments/{attachment.pk}/download", **bearer_headers(seller))
    for response in (from_site, from_api):
        assert response.status_code == 200
        assert content(response) == PDF
        assert response["Content-Type"] == "application/pdf"
        assert response["X-Content-Type-Options"] == "nosniff"
        disposition = response["Content-Disposition"]
        assert disposition.startswith("attachment;")
        assert "filename*=UTF-8''R%C3%A9sum%C3%A9%20final.pdf" in disposition
        assert 'filename="R_sum_ final.pdf"' in disposition  # the ASCII fallback
    accessed = Attachment.objects.get(pk=attachment.pk).last_accessed_at
    assert accessed is not None and accessed >= before


def test_a_message_carries_text_and_several_files_within_the_limit(
    client, settings, buyer, seller, conversation
):
    settings.ATTACHMENTS_PER_MESSAGE = 2
    first = upload(client, seller, conversation, "brief.txt", b"The brief\n")
    second = upload(client, seller, conversation, "logo.png", png_bytes())

    response = send(client, seller, conversation, [first["id"], second["id"]], body="Here are both")
    assert response.status_code == 201, response.content
    assert response.json()["body"] == "Here are both"
    assert sorted(a["name"] for a in response.json()["attachments"]) == ["brief.txt", "logo.png"]
    message = Message.objects.get(pk=response.json()["id"])
    assert set(message.attachments.values_list("status", flat=True)) == {"attached"}

    third, fourth, fifth = (upload(client, seller, conversation, f"{n}.txt", b"x\n") for n in "abc")
    before = Message.objects.count()
    too_many = send(client, seller, conversation, [third["id"], fourth["id"], fifth["id"]], body="All")
    assert_refused(too_many, 422, "too_many_attachments")
    assert Message.objects.count() == before
    assert set(
        Attachment.objects.filter(pk__in=[third["id"], fourth["id"], fifth["id"]]).values_list(
            "status", flat=True
        )
    ) == {"ready"}


def test_someone_elses_upload_or_one_already_sent_is_refused_and_no_message_is_stored(
    client, buyer, seller, conversation
):
    theirs = upload(client, seller, conversation, "quote.pdf", PDF)
    mine = upload(client, buyer, conversation, "mine.pdf", PDF)
    assert send(client, buyer, conversation, [mine["id"]]).status_code == 201
    fresh = upload(client, buyer, conversation, "fresh.txt", b"fresh\n")
    before = Message.objects.count()

    assert_refused(send(client, buyer, conversation, [theirs["id"]]), 409, "invalid_attachment")
    assert_refused(send(client, buyer, conversation, [mine["id"]], body="again"), 409, "invalid_attachment")
    # One bad id spoils the message: the good file is not sent either.
    mixed = send(client, buyer, conversation, [fresh["id"], theirs["id"]], body="both")
    assert_refused(mixed, 409, "invalid_attachment")
    assert_refused(send(client, buyer, conversation, [2**40]), 409, "invalid_attachment")

    assert Message.objects.count() == before
    assert Attachment.objects.get(pk=theirs["id"]).status == "ready"
    assert Attachment.objects.get(pk=fresh["id"]).status == "ready"
    assert Attachment.objects.get(pk=fresh["id"]).message_id is None


# --- 2. Thumbnails ------------------------------------------------------------------------------


def test_an_image_gets_a_thumbnail_shown_in_the_thread(
    client, buyer, seller, conversation, media_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        uploaded = upload(client, buyer, conversation, "photo.png", png_bytes((1200, 900)))
    attachment = Attachment.objects.get(pk=uploaded["id"])
    assert attachment.thumbnail_key
    assert (media_root / "attachments" / attachment.thumbnail_key).is_file()
    assert send(client, buyer, conversation, [attachment.pk]).status_code == 201

    listed = client.get(f"/api/v1/conversations/{conversation.pk}/messages", **bearer_headers(seller))
    [payload] = [a for m in listed.json()["items"] for a in m["attachments"]]
    assert payload["thumbnail_url"] == f"/api/v1/attachments/{attachment.pk}/thumbnail"

    response = client.get(payload["thumbnail_url"], **bearer_headers(seller))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    thumbnail = Image.open(io.BytesIO(content(response)))
    assert thumbnail.format == "JPEG"
    assert max(thumbnail.size) <= 320

    html = page(client, seller, f"/inbox/{conversation.pk}/").content.decode()
    assert f'<img src="/api/v1/attachments/{attachment.pk}/thumbnail"' in html

    # From the thread page, the browser asks with its session cookie.
    client.force_login(seller)
    assert client.get(payload["thumbnail_url"]).status_code == 200


def test_a_file_that_is_not_an_image_has_no_thumbnail(client, buyer, conversation):
    uploaded = upload(client, buyer, conversation, "doc.pdf", PDF)
    assert uploaded["thumbnail_url"] is None
    response = client.get(f"/api/v1/attachments/{uploaded['id']}/thumbnail", **bearer_headers(buyer))
    assert_refused(response, 404, "not_found")


# --- 3. Access ----------------------------------------------------------------------------------


def test_a_stranger_gets_404_for_the_file_its_download_and_thumbnail(
    client, buyer, seller, stranger, conversation, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        uploaded = upload(client, buyer, conversation, "photo.png", png_bytes())
    assert send(client, buyer, conversation, [uploaded["id"]]).status_code == 201
    for path in ("", "/download", "/thumbnail"):
        response = client.get(f"/api/v1/attachments/{uploaded['id']}{path}", **bearer_headers(stranger))
        assert_refused(response, 404, "not_found")
    assert page(client, stranger, f"/files/{uploaded['id']}/").status_code == 404
    assert client.get(f"/files/{uploaded['id']}/").status_code == 302  # anonymous: log in first
    assert Attachment.objects.get(pk=uploaded["id"]).last_accessed_at is None


def test_an_upload_not_sent_yet_is_visible_to_its_uploader_only(client, buyer, seller, staff, conversation):
    uploaded = upload(client, buyer, conversation, "draft.pdf", PDF)
    mine = client.get(f"/api/v1/attachments/{uploaded['id']}", **bearer_headers(buyer))
    assert mine.status_code == 200 and mine.json()["status"] == "ready"
    assert content(client.get(uploaded["download_url"], **bearer_headers(buyer))) == PDF
    for other in (seller, staff):
        for path in ("", "/download"):
            response = client.get(f"/api/v1/attachments/{uploaded['id']}{path}", **bearer_headers(other))
            assert_refused(response, 404, "not_found")
        assert page(client, other, f"/files/{uploaded['id']}/").status_code == 404


def test_staff_can_download_a_sent_file(client, buyer, staff, conversation):
    attachment = sent_file(client, buyer, conversation)
    response = page(client, staff, f"/files/{attachment.pk}/")
    assert response.status_code == 200
    assert content(response) == PDF
    api = client.get(f"/api/v1/attachments/{attachment.pk}/download", **bearer_headers(staff))
    assert api.status_code == 200 and content(api) == PDF


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("Sure! Whatsapp me if that's easier for you", "held"),
        ("Sure! Write to sam.seller@gmail.com with the brief", "rejected"),
    ],
)
def test_the_file_of_a_message_the_recipient_cannot_see_is_not_theirs_either(
    client, settings, buyer, seller, staff, conversation, body, status
):
    settings.MODERATION_SCANNERS = ["moderation.scanners.contact_details", "moderation.scanners.off_platform"]
    uploaded = upload(client, seller, conversation, "contact.pdf", PDF)
    response = send(client, seller, conversation, [uploaded["id"]], body=body)
    assert response.status_code == 201, response.content
    assert response.json()["status"] == status
    for path in ("", "/download"):
        refused = client.get(f"/api/v1/attachments/{uploaded['id']}{path}", **bearer_headers(buyer))
        assert_refused(refused, 404, "not_found")
    assert page(client, buyer, f"/files/{uploaded['id']}/").status_code == 404
    own = client.get(f"/api/v1/attachments/{uploaded['id']}/download", **bearer_headers(seller))
    assert own.status_code == 200 and content(own) == PDF
    assert page(client, staff, f"/files/{uploaded['id']}/").status_code == 200


def test_the_files_of_a_deleted_message_go_with_it(client, buyer, seller, staff, conversation):
    attachment = sent_file(client, buyer, conversation)
    deleted = client.delete(f"/api/v1/messages/{attachment.message_id}", **bearer_headers(buyer))
    assert deleted.status_code == 200 and deleted.json()["deleted"]
    assert (
        f'href="/files/{attachment.pk}/"'
        not in page(client, seller, f"/inbox/{conversation.pk}/").content.decode()
    )
    for user in (seller, buyer):
        refused = client.get(f"/api/v1/attachments/{attachment.pk}/download", **bearer_headers(user))
        assert_refused(refused, 404, "not_found")
        assert page(client, user, f"/files/{attachment.pk}/").status_code == 404
    assert page(client, staff, f"/files/{attachment.pk}/").status_code == 200  # like the text, for admins


# --- 4. Archive and restore ---------------------------------------------------------------------


def make_idle(attachment: Attachment, settings, days_extra: int = 1) -> None:
    long_ago = timezone.now() - timedelta(days=settings.ATTACHMENT_ARCHIVE_AFTER_DAYS + days_extra)
    Attachment.objects.filter(pk=attachment.pk).update(created_at=long_ago, last_accessed_at=long_ago)


def test_an_idle_file_is_archived_then_restored_on_demand_and_downloadable_again(
    client, settings, buyer, seller, conversation, media_root
):
    attachment = sent_file(client, buyer, conversation)
    recent = sent_file(client, buyer, conversation, name="recent.pdf")
    make_idle(attachment, settings)

    assert sum(services.archive_idle()) == 1
    assert list(services.archive_idle()) == []  # nothing left to archive: never twice
    attachment.refresh_from_db()
    assert attachment.status == "archived" and attachment.archived_at is not None
    assert not live_path(media_root, attachment).exists()
    assert archived_path(media_root, attachment).read_bytes() == PDF
    assert Attachment.objects.get(pk=recent.pk).status == "attached"
    assert live_path(media_root, recent).exists()

    html = page(client, seller, f"/inbox/{conversation.pk}/").content.decode()
    assert "archived: downloading starts a restore" in html

    # The seller clicks the link: the restore starts, and the page says when it is ready.
    started = page(client, seller, f"/files/{attachment.pk}/")
    assert started.status_code == 409
    text = started.content.decode()
    assert "restore has started" in text
    assert "ready around" in text
    attachment.refresh_from_db()
    assert attachment.status == "restoring"
    assert attachment.restore_requested_by == seller
    hours = (attachment.restore_ready_at - timezone.now()).total_seconds() / 3600
    assert settings.ATTACHMENT_RESTORE_HOURS - 0.1 < hours <= settings.ATTACHMENT_RESTORE_HOURS

    # Asking again (the API, the other participant) does not start another one.
    again = client.get(f"/api/v1/attachments/{attachment.pk}/download", **bearer_headers(buyer))
    assert_refused(again, 409, "restore_in_progress")
    assert "being restored" in again.json()["detail"]
    ready_at = again.json()["ready_at"]
    assert datetime.fromisoformat(ready_at) == attachment.restore_ready_at
    attachment.refresh_from_db()
    assert attachment.restore_requested_by == seller
    assert services.finish_restores() == 0  # not ready yet
    assert not Notification.objects.filter(kind="file_restored").exists()

    # Time passes: the restore completes, and the seller is told.
    Attachment.objects.filter(pk=attachment.pk).update(restore_ready_at=timezone.now() - timedelta(minutes=1))
    assert services.finish_restores() == 1
    assert services.finish_restores() == 0
    attachment.refresh_from_db()
    assert attachment.status == "attached"
    assert live_path(media_root, attachment).read_bytes() == PDF
    assert not archived_path(media_root, attachment).exists()
    [notification] = Notification.objects.filter(kind="file_restored")
    assert notification.recipient == seller
    assert "Résumé final.pdf" in notification.title
    assert notification.url.startswith(f"/inbox/{conversation.pk}/")

    # Back from the archive, it is not archived again before anyone could download it.
    assert sum(services.archive_idle()) == 0
    response = client.get(f"/api/v1/attachments/{attachment.pk}/download", **bearer_headers(seller))
    assert response.status_code == 200
    assert content(response) == PDF


def test_a_file_moved_to_the_archive_by_a_run_that_never_committed_still_downloads(
    client, buyer, seller, conversation, media_root
):
    attachment = sent_file(client, buyer, conversation)
    services.blob_store().archive(attachment.key)  # moved on disk; the row still says "attached"

    response = client.get(f"/api/v1/attachments/{attachment.pk}/download", **bearer_headers(seller))

    assert response.status_code == 200
    assert content(response) == PDF


def test_with_no_restore_delay_the_next_download_brings_the_file_back(
    client, settings, buyer, seller, conversation, media_root
):
    settings.ATTACHMENT_RESTORE_HOURS = 0
    attachment = sent_file(client, buyer, conversation)
    make_idle(attachment, settings)
    assert sum(services.archive_idle()) == 1

    started = client.get(f"/api/v1/attachments/{attachment.pk}/download", **bearer_headers(seller))
    assert_refused(started, 409, "restore_in_progress")
    assert "restore has started" in started.json()["detail"]
    assert started.json()["ready_at"]

    response = client.get(f"/api/v1/attachments/{attachment.pk}/download", **bearer_headers(seller))
    assert response.status_code == 200
    assert content(response) == PDF
    assert live_path(media_root, attachment).exists()
    assert Attachment.objects.get(pk=attachment.pk).status == "attached"


@pytest.mark.django_db(transaction=True)
def test_two_archive_runs_at_once_archive_each_file_once(client, settings, buyer, seller, media_root):
    conversation = buyer_opens_conversation(buyer, seller)
    attachments = [sent_file(client, buyer, conversation, name=f"f{n}.pdf") for n in range(6)]
    for attachment in attachments:
        make_idle(attachment, settings)
    start = threading.Barrier(2)
    counts, errors = [], []

    def run():
        try:
            start.wait(5)
            counts.append(sum(services.archive_idle(batch_size=1)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sum(counts) == len(attachments)
    assert set(Attachment.objects.values_list("status", flat=True)) == {"archived"}
    for attachment in attachments:
        assert archived_path(media_root, attachment).read_bytes() == PDF
        assert not live_path(media_root, attachment).exists()


# --- 5. Purge -----------------------------------------------------------------------------------


def test_old_files_are_purged_and_show_as_expired(
    client, settings, buyer, seller, conversation, media_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        image = upload(client, buyer, conversation, "old photo.png", png_bytes())
    assert send(client, buyer, conversation, [image["id"]]).status_code == 201
    old_image = Attachment.objects.get(pk=image["id"])
    old_archived = sent_file(client, buyer, conversation, name="old.pdf")
    make_idle(old_archived, settings)
    assert sum(services.archive_idle()) == 1
    kept = sent_file(client, buyer, conversation, name="kept.pdf")
    long_ago = timezone.now() - timedelta(days=settings.ATTACHMENT_PURGE_AFTER_DAYS + 1)
    Attachment.objects.filter(pk__in=[old_image.pk, old_archived.pk]).update(created_at=long_ago)

    assert sum(services.purge_old()) == 2
    assert list(services.purge_old()) == []
    for attachment in (old_image, old_archived):
        fresh = Attachment.objects.get(pk=attachment.pk)  # the message keeps a placeholder
        assert fresh.status == "expired" and fresh.purged_at is not None
        assert not live_path(media_root, attachment).exists()
        assert not archived_path(media_root, attachment).exists()
    assert not (media_root / "attachments" / old_image.thumbnail_key).exists()
    assert stored_files(media_root) == [live_path(media_root, kept)]

    html = page(client, seller, f"/inbox/{conversation.pk}/").content.decode()
    assert html.count("file expired") == 2
    assert f'href="/files/{old_image.pk}/"' not in html
    assert "/thumbnail" not in html
    assert f'href="/files/{kept.pk}/"' in html

    api = client.get(f"/api/v1/attachments/{old_archived.pk}/download", **bearer_headers(seller))
    assert_refused(api, 410, "file_expired")
    site = page(client, seller, f"/files/{old_archived.pk}/")
    assert site.status_code == 410
    assert "expired" in site.content.decode()
    assert "old.pdf" in site.content.decode()
    details = client.get(f"/api/v1/attachments/{old_image.pk}", **bearer_headers(seller))
    assert details.json()["status"] == "expired" and details.json()["thumbnail_url"] is None


def test_abandoned_uploads_are_deleted_with_their_row(client, buyer, conversation, media_root):
    abandoned = upload(client, buyer, conversation, "never sent.pdf", PDF)
    recent = upload(client, buyer, conversation, "just now.pdf", PDF)
    Attachment.objects.filter(pk=abandoned["id"]).update(
        created_at=timezone.now() - timedelta(days=1, hours=1)
    )
    abandoned_key = Attachment.objects.get(pk=abandoned["id"]).key

    assert sum(services.purge_old()) == 1
    assert not Attachment.objects.filter(pk=abandoned["id"]).exists()
    assert not (media_root / "attachments" / abandoned_key).exists()
    kept = Attachment.objects.get(pk=recent["id"])
    assert kept.status == "ready"
    assert stored_files(media_root) == [live_path(media_root, kept)]


# --- 6. Bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("big.pdf", PDF + b"\x00" * 2000, "file_too_large"),
        ("photo.png", PDF, "file_type_mismatch"),
        ("tool", ELF, "file_type_not_allowed"),
        ("tool.bin", ELF, "file_type_not_allowed"),
        ("../../etc/passwd.txt", b"text\n", "invalid_name"),
        ("..", b"text\n", "invalid_name"),
        ("a\\b.txt", b"text\n", "invalid_name"),
        ("a%00b.txt", b"text\n", "invalid_name"),
        ("invoice\u202efdp.exe", b"text\n", "invalid_name"),  # U+202E disguises the extension
        ("x" * 496 + ".txt", b"text\n", "invalid_name"),
        ("", b"text\n", "invalid_name"),
        ("empty.txt", b"", "empty_file"),
    ],
)
def test_bad_uploads_are_refused_and_leave_nothing_behind(
    client, settings, buyer, conversation, media_root, name, data, code
):
    settings.ATTACHMENT_MAX_BYTES = 1000
    response = put_file(client, buyer, conversation.pk, name, data, raw_name="%00" in name)
    # A content the rules refuse is 403, as a text moderation refuses; bad input is 422.
    assert_refused(response, 403 if code.startswith("file_type_") else 422, code)
    assert Attachment.objects.count() == 0
    assert stored_files(media_root) == []


def test_an_upload_without_content_length_is_refused(client, buyer, conversation, media_root):
    response = put_file(client, buyer, conversation.pk, "notes.txt", b"", CONTENT_LENGTH="")
    assert_refused(response, 422, "length_required")
    assert Attachment.objects.count() == 0
    assert stored_files(media_root) == []


def test_a_non_participant_cannot_upload_into_a_conversation(client, stranger, conversation, media_root):
    assert_refused(put_file(client, stranger, conversation.pk, "spam.pdf", PDF), 404, "not_found")
    assert_refused(put_file(client, stranger, 2**40, "spam.pdf", PDF), 404, "not_found")
    assert Attachment.objects.count() == 0
    assert stored_files(media_root) == []


# --- 6b. Uploads in parts to this server's signed part URLs ------------------------------------


def start_parts(client, user, conversation, name, data, settings) -> tuple[int, dict]:
    settings.ATTACHMENT_PART_BYTES = 1024
    started = client.post(
        f"/api/v1/conversations/{conversation.pk}/uploads",
        {"name": name, "size": len(data)},
        content_type="application/json",
        **bearer_headers(user),
    ).json()
    numbers = list(range(1, started["part_count"] + 1))
    urls = client.post(
        f"/api/v1/uploads/{started['attachment_id']}/parts",
        {"part_numbers": numbers},
        content_type="application/json",
        **bearer_headers(user),
    ).json()["urls"]
    return started["attachment_id"], {int(n): url for n, url in urls.items()}


def put_part(client, url, data):
    return client.generic("PUT", url, data, content_type="application/octet-stream")


def test_a_file_uploaded_in_parts_is_joined_and_checked(client, settings, buyer, conversation, media_root):
    data = PDF + bytes(3000)
    upload_id, urls = start_parts(client, buyer, conversation, "Brief in parts.pdf", data, settings)
    parts = []
    for number, url in urls.items():
        sent = put_part(client, url, data[(number - 1) * 1024 : number * 1024])
        assert sent.status_code == 200, sent.content
        parts.append({"part_number": number, "etag": sent["ETag"]})

    done = client.post(
        f"/api/v1/uploads/{upload_id}/complete",
        {"parts": parts},
        content_type="application/json",
        **bearer_headers(buyer),
    )

    assert done.status_code == 200, done.content
    assert (done.json()["status"], done.json()["size"], done.json()["content_type"]) == (
        "ready",
        len(data),
        "application/pdf",
    )
    assert live_path(media_root, Attachment.objects.get(pk=upload_id)).read_bytes() == data


def test_part_urls_are_signed_short_lived_and_bounded(client, settings, buyer, conversation, media_root):
    data = PDF + bytes(3000)
    _upload_id, urls = start_parts(client, buyer, conversation, "brief.pdf", data, settings)

    tampered = put_part(client, urls[1][:-3] + "abc/", data[:1024])
    too_big = put_part(client, urls[1], data[:1025])
    settings.ATTACHMENT_URL_EXPIRE_SECONDS = -1  # every signature is now older than allowed
    expired = put_part(client, urls[1], data[:1024])

    assert_refused(tampered, 403, "bad_signature")
    assert_refused(too_big, 422, "invalid_part")
    assert_refused(expired, 403, "url_expired")
    assert not any((media_root / "attachments-uploads").glob("*/1"))  # no part was kept


def test_one_request_uploads_are_for_files_up_to_one_part(client, settings, buyer, conversation, media_root):
    settings.ATTACHMENT_PART_BYTES = 1024

    assert_refused(
        put_file(client, buyer, conversation.pk, "big.pdf", PDF + bytes(2000)), 422, "use_multipart"
    )
    assert not Attachment.objects.exists()


# --- 7. Memory during a large upload to a real server -------------------------------------------


def peak_rss(pid: int) -> int:
    """The process's peak resident set size in bytes (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


BIG_BYTES = 300 * MiB


def big_part(number: int, part_size: int) -> bytes:
    """Part `number` (from 1) of a generated PDF of BIG_BYTES: only one part is ever in memory."""
    start = (number - 1) * part_size
    data = bytearray(min(part_size, BIG_BYTES - start))
    if number == 1:
        data[:9] = b"%PDF-1.4\n"
    return bytes(data)


def test_memory_stays_flat_while_a_large_file_is_uploaded_in_parts(
    daphne_servers, monkeypatch, settings, buyer, seller, media_root
):
    """As the browser does: the file goes in parts of ATTACHMENT_PART_BYTES to this server's
    signed part URLs, each part streamed to disk, then joined. (daphne holds one request body in
    memory whole, django/daphne#483, so a single 1 GB request would cost 1 GB: hence parts.)"""
    monkeypatch.setenv("MEDIA_ROOT", str(media_root))  # the server process's folder too
    base_url = daphne_servers.start()
    pid = daphne_servers.processes[-1].pid  # Popen runs `python -m daphne` itself: no shell between
    assert b"daphne" in Path(f"/proc/{pid}/cmdline").read_bytes()
    conversation = buyer_opens_conversation(buyer, seller)
    headers = {"Authorization": bearer_headers(buyer)["HTTP_AUTHORIZATION"]}
    api = f"{base_url}/api/v1"
    try:
        with httpx.Client(headers=headers, timeout=120) as http:
            warm_up = http.put(
                f"{api}/conversations/{conversation.pk}/attachments",
                params={"name": "small.pdf"},
                content=PDF,
            )
            assert warm_up.status_code == 201, warm_up.text
            before = peak_rss(pid)
            started = http.post(
                f"{api}/conversations/{conversation.pk}/uploads",
                json={"name": "big.pdf", "size": BIG_BYTES, "content_type": "application/pdf"},
            ).json()
            upload_id, part_size, part_count = (
                started["attachment_id"],
                started["part_size"],
                started["part_count"],
            )
            urls = http.post(
                f"{api}/uploads/{upload_id}/parts", json={"part_numbers": list(range(1, part_count + 1))}
            )
            parts = []
            for number, path in urls.json()["urls"].items():
                sent = httpx.put(f"{base_url}{path}", content=big_part(int(number), part_size), timeout=60)
                assert sent.status_code == 200, sent.text
                parts.append({"part_number": int(number), "etag": sent.headers["ETag"]})
            response = http.post(f"{api}/uploads/{upload_id}/complete", json={"parts": parts})
            after = peak_rss(pid)
        assert response.status_code == 200, response.text
        attachment = Attachment.objects.get(pk=upload_id)
        assert (attachment.name, attachment.size, attachment.content_type, attachment.status) == (
            "big.pdf",
            BIG_BYTES,
            "application/pdf",
            "ready",
        )
        assert live_path(media_root, attachment).stat().st_size == BIG_BYTES
        assert not any((media_root / "attachments-uploads").iterdir())  # the parts are gone
        print(f"daphne peak RSS: {before / MiB:.1f} MiB before, {after / MiB:.1f} MiB after")
        assert after - before < 64 * MiB, (
            f"daphne's peak RSS grew by {(after - before) / MiB:.0f} MiB for a {BIG_BYTES // MiB} MiB upload"
        )
    finally:
        shutil.rmtree(media_root / "attachments", ignore_errors=True)
