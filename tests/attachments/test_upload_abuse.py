"""Hostile uploads, the cases tests/attachments/test_local.py and test_s3.py do not already
cover: pages and scripts dressed as images, an archive bomb, a pixel flood, the exact size
limit, names meant to break paths or headers. Each is refused with a clear error, or stored
under a server-made key and handed out only as a download that cannot run."""

import io
import re
import resource
import struct
import zipfile
import zlib
from email.message import Message as MimeMessage
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from attachments.models import Attachment
from tests.attachments.test_local import (
    PDF,
    assert_refused,
    content,
    png_bytes,
    put_file,
    send,
    stored_files,
    upload,
)
from tests.attachments.test_s3 import Api as BucketApi
from tests.attachments.test_s3 import bucket, moto_endpoint, operator_client, put_part, query  # noqa: F401
from tests.factories import bearer_headers, buyer_opens_conversation

SVG_WITH_SCRIPT = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
MiB = 1024 * 1024
RFC_6266 = re.compile(
    r"""attachment; filename="[ -!#-\[\]-~]*"; filename\*=UTF-8''(?P<encoded>[A-Za-z0-9%._~-]+)"""
)


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def conversation(buyer, seller):
    return buyer_opens_conversation(buyer, seller)


def download(client, user, attachment_id):
    response = client.get(f"/api/v1/attachments/{attachment_id}/download", **bearer_headers(user))
    assert response.status_code == 200, response.content
    return response


def disposition(response) -> MimeMessage:
    parsed = MimeMessage()
    parsed["Content-Disposition"] = response["Content-Disposition"]
    return parsed


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, *, rows: int) -> bytes:
    """A grey PNG whose header says width x height, with `rows` rows of zero pixels (all of
    them: a valid image; fewer: a tiny file that claims a huge one)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress((b"\x00" + bytes(width)) * rows, 1)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """~4.6 MB that unpacks to 1 GiB + 1 MiB of zeros."""
    output = io.BytesIO()
    with (
        zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("zeros.bin", "w", force_zip64=True) as member,
    ):
        for _chunk in range(1025):
            member.write(bytes(MiB))
    return output.getvalue()


# --- content that is not what it says ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("holiday.jpg", HTML),
        ("logo.svg", SVG_WITH_SCRIPT),
        ("logo.png", SVG_WITH_SCRIPT),
        ("notes.txt", b"Meeting notes, see below.\n<script>alert(1)</script>\n"),
    ],
)
def test_pages_and_scripts_are_refused_whatever_their_name(
    client, buyer, conversation, media_root, name, data
):
    response = put_file(client, buyer, conversation.pk, name, data)
    assert_refused(response, 403, "file_type_not_allowed")
    assert "cannot be sent" in response.json()["detail"]
    assert Attachment.objects.count() == 0 and stored_files(media_root) == []


@pytest.mark.parametrize(("name", "data"), [("logo.svg", SVG_WITH_SCRIPT), ("page.html", HTML)])
def test_if_an_operator_allows_svg_or_html_they_still_download_as_inert_bytes(
    client, settings, buyer, seller, conversation, media_root, name, data
):
    settings.ATTACHMENT_ALLOWED_TYPES = [*settings.ATTACHMENT_ALLOWED_TYPES, "image/svg+xml", "text/html"]
    uploaded = upload(client, buyer, conversation, name, data)
    assert send(client, buyer, conversation, [uploaded["id"]]).status_code == 201

    response = download(client, seller, uploaded["id"])

    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert disposition(response).get_content_disposition() == "attachment"
    assert disposition(response).get_filename() == name
    assert content(response) == data


def test_an_archive_bomb_is_stored_and_served_as_an_opaque_download_never_unpacked(
    client, buyer, seller, conversation, media_root, zip_bomb
):
    unpacked = zipfile.ZipFile(io.BytesIO(zip_bomb)).infolist()[0].file_size
    assert unpacked > 1024**3 and len(zip_bomb) < 8 * MiB
    uploaded = upload(client, buyer, conversation, "assets.zip", zip_bomb)
    assert uploaded["content_type"] == "application/zip" and uploaded["thumbnail_url"] is None
    assert send(client, buyer, conversation, [uploaded["id"]]).status_code == 201
    # The store holds exactly the bytes sent: one file, nothing unpacked beside it.
    [stored] = stored_files(media_root)
    assert stored.stat().st_size == len(zip_bomb)

    response = download(client, seller, uploaded["id"])

    assert response["Content-Type"] == "application/zip"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert disposition(response).get_content_disposition() == "attachment"
    assert content(response) == zip_bomb


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    ("name", "data"),
    [
        # A few hundred bytes claiming 20,000 x 20,000 (400 megapixels; 1.2 GB decoded).
        ("flood.png", png(20_000, 20_000, rows=4)),
        # A real 60-megapixel image: over the 50 MP limit, under the 100 MP where Pillow refuses.
        ("large.png", png(8_000, 7_500, rows=7_500)),
    ],
)
def test_a_pixel_flood_gets_no_thumbnail_and_costs_no_memory(
    client, buyer, seller, conversation, media_root, django_capture_on_commit_callbacks, name, data
):
    before = peak_rss_mib()
    with django_capture_on_commit_callbacks(execute=True):  # the thumbnail task runs here
        uploaded = upload(client, buyer, conversation, name, data)

    assert peak_rss_mib() - before < 100
    assert uploaded["content_type"] == "image/png"
    attachment = Attachment.objects.get(pk=uploaded["id"])
    assert attachment.thumbnail_key == ""
    # Still an ordinary file to download.
    assert send(client, buyer, conversation, [attachment.pk]).status_code == 201
    response = download(client, seller, attachment.pk)
    assert response["Content-Type"] == "image/png" and content(response) == data


def test_the_thumbnailer_decodes_a_file_only_as_its_sniffed_type(
    client, buyer, conversation, media_root, django_capture_on_commit_callbacks
):
    """Pillow has decoders for many formats (PSD, EPS, ...); the thumbnailer hands a file only to
    the one for the type it was sniffed as, so a mislabelled file gets no thumbnail."""
    from attachments.thumbnails import make_thumbnail

    with django_capture_on_commit_callbacks(execute=True):
        uploaded = upload(client, buyer, conversation, "anim.gif", png_bytes((64, 48), image_format="GIF"))
    attachment = Attachment.objects.get(pk=uploaded["id"])
    assert attachment.content_type == "image/gif" and attachment.thumbnail_key

    Attachment.objects.filter(pk=attachment.pk).update(content_type="image/png", thumbnail_key="")
    assert make_thumbnail(attachment_id=attachment.pk) == ""
    Attachment.objects.filter(pk=attachment.pk).update(content_type="image/vnd.adobe.photoshop")
    assert make_thumbnail(attachment_id=attachment.pk) == ""
    assert Attachment.objects.get(pk=attachment.pk).thumbnail_key == ""


# --- size --------------------------------------------------------------------------------------


def test_the_size_limit_is_exact(client, settings, buyer, conversation, media_root):
    settings.ATTACHMENT_MAX_BYTES = 2000
    at_limit = PDF + b"\x00" * (2000 - len(PDF))

    assert upload(client, buyer, conversation, "at-limit.pdf", at_limit)["size"] == 2000
    over = put_file(client, buyer, conversation.pk, "over.pdf", at_limit + b"\x00")
    assert_refused(over, 422, "file_too_large")
    assert "at most 2,000 bytes; this one has 2,001" in over.json()["detail"]
    announced = client.post(
        f"/api/v1/conversations/{conversation.pk}/uploads",
        {"name": "over.pdf", "size": 2001},
        content_type="application/json",
        **bearer_headers(buyer),
    )
    assert_refused(announced, 422, "file_too_large")
    assert Attachment.objects.count() == 1 and len(stored_files(media_root)) == 1


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "report\r\n.pdf",  # CRLF: would split a header
        "report\r\nContent-Type: text/html\r\n\r\n<script>.pdf",
        "x" * 252 + ".pdf",  # 256 characters (and 300 below)
        "x" * 296 + ".pdf",
        "../../etc/passwd",
    ],
)
def test_names_that_break_headers_or_paths_are_refused(client, buyer, conversation, media_root, name):
    response = put_file(client, buyer, conversation.pk, name, b"plain text\n")
    assert_refused(response, 422, "invalid_name")
    assert Attachment.objects.count() == 0 and stored_files(media_root) == []


@pytest.mark.parametrize(
    "name",
    [
        ".htaccess",
        'quote"; filename=evil.html',
        "x" * 251 + ".txt",  # 255 characters: the longest allowed
        "résumé, final ✓ (2).txt",
    ],
)
def test_odd_names_are_kept_for_display_but_never_used_as_the_stored_path_or_raw_in_a_header(
    client, buyer, seller, conversation, media_root, name
):
    uploaded = upload(client, buyer, conversation, name, b"plain text, nothing else\n")
    assert uploaded["name"] == name
    assert send(client, buyer, conversation, [uploaded["id"]]).status_code == 201
    attachment = Attachment.objects.get(pk=uploaded["id"])
    year_month_uuid, _slash, stored_name = attachment.key.rpartition("/")
    assert len(year_month_uuid.split("/")) == 3 and len(year_month_uuid.split("/")[2]) == 32
    assert not stored_name.startswith(".") and len(stored_name) <= 91 and stored_name.isascii()
    [stored] = stored_files(media_root)
    assert stored.is_relative_to(media_root / "attachments")

    response = download(client, seller, attachment.pk)

    assert response["Content-Type"] == "text/plain"
    assert response["X-Content-Type-Options"] == "nosniff"
    # RFC 6266: a quoted ASCII fallback with no quote inside, and the exact name percent-encoded.
    header = RFC_6266.fullmatch(response["Content-Disposition"])
    assert header is not None, response["Content-Disposition"]
    assert unquote(header["encoded"]) == name


# --- the bucket: presigned URLs ----------------------------------------------------------------


def test_every_presigned_url_expires_within_five_minutes_and_downloads_inert(
    bucket,  # noqa: F811
    settings,
    buyer,
    seller,
    conversation,
    django_capture_on_commit_callbacks,
):
    settings.ATTACHMENT_ALLOWED_TYPES = [*settings.ATTACHMENT_ALLOWED_TYPES, "image/svg+xml"]
    api, other = BucketApi(buyer), BucketApi(seller)
    started = api.start(conversation, "logo.svg", len(SVG_WITH_SCRIPT), content_type="image/svg+xml")
    [part_url] = api.sign(started["attachment_id"], [1]).values()
    completed = api.complete(started["attachment_id"], {1: put_part(part_url, SVG_WITH_SCRIPT)})
    photo = png(640, 480, rows=480)
    with django_capture_on_commit_callbacks(execute=True):
        uploaded_photo = api.upload(conversation, "photo.png", photo, content_type="image/png").json()
    api.send(conversation, [completed.json()["id"], uploaded_photo["id"]])

    svg = other.get(f"/attachments/{completed.json()['id']}/download")
    thumbnail = other.get(f"/attachments/{uploaded_photo['id']}/thumbnail")
    urls = [part_url, svg["Location"], thumbnail["Location"]]
    assert all(0 < int(query(url)["X-Amz-Expires"]) <= 300 for url in urls)

    signed = query(svg["Location"])
    assert signed["response-content-type"] == "application/octet-stream"
    assert signed["response-content-disposition"].startswith("attachment;")
    fetched = httpx.get(svg["Location"], timeout=10)
    assert fetched.status_code == 200 and fetched.content == SVG_WITH_SCRIPT
    assert fetched.headers["Content-Type"] == "application/octet-stream"
    assert fetched.headers["Content-Disposition"].startswith("attachment;")
