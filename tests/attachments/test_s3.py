"""Attachments on a real S3 API: moto in server mode over HTTP (a subprocess), reached through
django-storages' S3Storage and its boto3 client exactly as production reaches AWS or MinIO.
The test client plays the browser: it asks the API for presigned URLs and PUTs/GETs them with
httpx, so every byte travels over HTTP to the bucket."""

import json
import random
import struct
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from io import StringIO
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from attachments import services
from attachments.models import Attachment
from notifications.models import Notification
from tests.conftest import service_unavailable
from tests.factories import bearer_headers, buyer_opens_conversation
from tests.servers import free_port

pytestmark = pytest.mark.django_db

API = "/api/v1"
MiB = 1024 * 1024
S3_MIN_PART = 5 * MiB  # S3 (and moto) refuse to complete with a smaller part that is not the last
CREDENTIALS = {"access_key": "testing", "secret_key": "testing"}


# --- the bucket -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory):
    """One moto S3 server (a real HTTP server, in its own process) for the module."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log_path, "wb") as log:
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            service_unavailable(f"moto server could not start: {exc}")
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            service_unavailable(f"moto server exited with {process.returncode}; see {log_path}")
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                service_unavailable(f"moto server did not answer at {endpoint} within 20 s; see {log_path}")
            time.sleep(0.1)
    yield endpoint
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def operator_client(moto_endpoint):
    """A boto3 client of the tests' own, to look into the bucket behind the product's back."""
    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS["access_key"],
        aws_secret_access_key=CREDENTIALS["secret_key"],
        config=Config(signature_version="s3v4"),
    )


class Bucket:
    """The bucket as an operator sees it."""

    def __init__(self, client, name: str):
        self.client = client
        self.name = name

    def keys(self) -> list[str]:
        return [o["Key"] for o in self.client.list_objects_v2(Bucket=self.name).get("Contents", [])]

    def open_uploads(self) -> list[str]:
        return [u["Key"] for u in self.client.list_multipart_uploads(Bucket=self.name).get("Uploads", [])]

    def head(self, key: str) -> dict:
        return self.client.head_object(Bucket=self.name, Key=key)

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def presigned_get(self, key: str) -> str:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.name, "Key": key}, ExpiresIn=60
        )


@pytest.fixture
def bucket(moto_endpoint, operator_client, settings):
    """A fresh bucket per test (so "nothing stored" means nothing), set as Django's default
    storage with the options of marketplace/settings.py."""
    bucket = Bucket(operator_client, f"attachments-{uuid.uuid4().hex[:12]}")
    bucket.client.create_bucket(Bucket=bucket.name)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket.name,
                "endpoint_url": moto_endpoint,
                "region_name": "us-east-1",
                **CREDENTIALS,
                "default_acl": None,
                "querystring_auth": True,
                "querystring_expire": 300,
                "signature_version": "s3v4",
                "file_overwrite": False,
            },
        },
    }
    settings.ATTACHMENT_PART_BYTES = S3_MIN_PART  # the smallest S3 allows: fewer bytes to send
    assert type(services.blob_store()).__name__ == "S3Store"
    return bucket


def assert_nothing_stored(bucket: Bucket) -> None:
    assert bucket.keys() == []
    assert bucket.open_uploads() == []
    assert not Attachment.objects.exists()


# --- the browser ------------------------------------------------------------------------------


class Api:
    """The API as a user's browser calls it (Django's test client with their bearer token)."""

    def __init__(self, user):
        self.client = Client()
        self.headers = bearer_headers(user)

    def get(self, path):
        response = self.client.get(API + path, **self.headers)
        assert response.status_code < 500, response.content
        return response

    def post(self, path, payload):
        response = self.client.post(
            API + path, data=json.dumps(payload), content_type="application/json", **self.headers
        )
        assert response.status_code < 500, response.content
        return response

    def delete(self, path):
        response = self.client.delete(API + path, **self.headers)
        assert response.status_code < 500, response.content
        return response

    # the browser's upload, step by step

    def start(self, conversation, name, size, content_type="") -> dict:
        response = self.post(
            f"/conversations/{conversation.pk}/uploads",
            {"name": name, "size": size, "content_type": content_type},
        )
        assert response.status_code == 201, response.content
        return response.json()

    def sign(self, attachment_id, part_numbers) -> dict[int, str]:
        response = self.post(f"/uploads/{attachment_id}/parts", {"part_numbers": part_numbers})
        assert response.status_code == 200, response.content
        return {int(n): url for n, url in response.json()["urls"].items()}

    def complete(self, attachment_id, etags: dict[int, str]):
        parts = [{"part_number": n, "etag": etag} for n, etag in sorted(etags.items())]
        return self.post(f"/uploads/{attachment_id}/complete", {"parts": parts})

    def upload(self, conversation, name, data: bytes, content_type="application/pdf"):
        """Start, sign every part, PUT them to the bucket, complete: the complete's answer."""
        started = self.start(conversation, name, len(data), content_type)
        urls = self.sign(started["attachment_id"], list(range(1, started["part_count"] + 1)))
        etags = {n: put_part(urls[n], part(data, started["part_size"], n)) for n in urls}
        return self.complete(started["attachment_id"], etags)

    def send(self, conversation, attachment_ids, body=""):
        response = self.post(
            f"/conversations/{conversation.pk}/messages", {"body": body, "attachments": attachment_ids}
        )
        assert response.status_code == 201, response.content
        return response.json()


def part(data: bytes, part_size: int, number: int) -> bytes:
    return data[(number - 1) * part_size : number * part_size]


def put_part(url: str, data: bytes) -> str:
    """PUT one part's bytes straight to the bucket (real HTTP), as the browser does: its ETag."""
    response = httpx.put(url, content=data, timeout=30)
    assert response.status_code == 200, response.text
    return response.headers["ETag"]


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == code, body
    assert body["detail"]
    return body


def pdf(size: int, *, seed: int = 1) -> bytes:
    """A file libmagic calls application/pdf, of exactly `size` bytes (random, so parts differ)."""
    head, tail = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n", b"\n%%EOF\n"
    return head + random.Random(seed).randbytes(size - len(head) - len(tail)) + tail


def elf(size: int = 4096) -> bytes:
    header = b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + struct.pack("<HHI", 2, 0x3E, 1)  # x86-64 executable
    return header + b"\x00" * (size - len(header))


def exe(size: int = 4096) -> bytes:
    return b"MZ\x90\x00" + b"\x00" * (size - 4)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
def conversation(buyer, seller):
    return buyer_opens_conversation(buyer, seller)


def sent_file(buyer, conversation, name="brief.pdf", data=None) -> tuple[dict, bytes]:
    """A small file the buyer uploaded and sent (one part: the last part may be small)."""
    data = data or pdf(40_000, seed=7)
    api = Api(buyer)
    completed = api.upload(conversation, name, data)
    assert completed.status_code == 200, completed.content
    api.send(conversation, [completed.json()["id"]])
    return completed.json(), data


# --- 1. the multipart upload, then the message ------------------------------------------------


def test_a_large_file_goes_to_the_bucket_in_parts_and_the_other_participant_gets_it(
    bucket, buyer, seller, conversation
):
    data = pdf(11 * MiB)
    buyer_api = Api(buyer)

    # The browser did not know the type: the server sniffs it from the stored bytes.
    started = buyer_api.start(conversation, "Brief v2.pdf", len(data), "application/octet-stream")
    assert started["part_size"] == 5 * MiB
    assert started["part_count"] == 3
    attachment = Attachment.objects.get(pk=started["attachment_id"])
    assert attachment.status == "uploading"
    assert bucket.open_uploads() == [attachment.key]  # S3's multipart upload is open

    urls = buyer_api.sign(started["attachment_id"], [1, 2, 3])
    assert sorted(urls) == [1, 2, 3]
    assert all(
        urlsplit(url).netloc == urlsplit(bucket.client.meta.endpoint_url).netloc for url in urls.values()
    )
    etags = {n: put_part(url, part(data, started["part_size"], n)) for n, url in urls.items()}
    assert bucket.keys() == []  # parts, not an object yet

    completed = buyer_api.complete(started["attachment_id"], etags)
    assert completed.status_code == 200, completed.content
    body = completed.json()
    assert body["id"] == attachment.pk
    assert body["status"] == "ready"
    assert body["content_type"] == "application/pdf"  # sniffed from the bytes
    assert body["size"] == len(data)
    assert body["name"] == "Brief v2.pdf"
    assert bucket.keys() == [attachment.key]
    assert bucket.open_uploads() == []
    assert bucket.head(attachment.key)["ContentLength"] == len(data)
    assert bucket.read(attachment.key) == data

    message = buyer_api.send(conversation, [attachment.pk])
    assert [a["id"] for a in message["attachments"]] == [attachment.pk]
    assert message["attachments"][0]["status"] == "attached"

    thread = Api(seller).get(f"/conversations/{conversation.pk}/messages")
    assert thread.status_code == 200
    [seen] = [m for m in thread.json()["items"] if m["id"] == message["id"]]
    assert seen["body"] == ""
    [file] = seen["attachments"]
    assert file["id"] == attachment.pk
    assert file["name"] == "Brief v2.pdf"
    assert file["size"] == len(data)
    assert file["content_type"] == "application/pdf"
    assert file["status"] == "attached"
    assert file["download_url"] == f"{API}/attachments/{attachment.pk}/download"


# --- 2. resuming an upload --------------------------------------------------------------------


class ConnectionDropped(Exception):
    pass


def test_a_failed_part_is_signed_again_and_resent_and_a_missing_part_is_refused(bucket, buyer, conversation):
    data = pdf(11 * MiB, seed=2)
    api = Api(buyer)
    started = api.start(conversation, "Portfolio.pdf", len(data))
    upload_id, size = started["attachment_id"], started["part_size"]
    urls = api.sign(upload_id, [1, 2, 3])
    etags = {1: put_part(urls[1], part(data, size, 1)), 3: put_part(urls[3], part(data, size, 3))}

    # Part 2: the connection drops after the first MiB. The bucket keeps nothing of it.
    def interrupted():
        yield part(data, size, 2)[:MiB]
        raise ConnectionDropped

    with pytest.raises(ConnectionDropped):
        httpx.put(urls[2], content=interrupted(), headers={"Content-Length": str(size)}, timeout=30)
    key = Attachment.objects.get(pk=upload_id).key
    listed = bucket.client.list_parts(
        Bucket=bucket.name, Key=key, UploadId=Attachment.objects.get(pk=upload_id).upload_id
    )
    assert sorted(p["PartNumber"] for p in listed["Parts"]) == [1, 3]

    # Completing without part 2, or with an ETag S3 never gave for it: refused, nothing lost.
    assert assert_error(api.complete(upload_id, etags), 409, "upload_incomplete")["missing_parts"] == [2]
    assert_error(
        api.complete(upload_id, {**etags, 2: '"0123456789abcdef0123456789abcdef"'}), 409, "upload_incomplete"
    )
    assert Attachment.objects.get(pk=upload_id).status == "uploading"
    assert bucket.open_uploads() == [key]
    assert bucket.keys() == []

    # The browser retries part 2 on a freshly signed URL, then completes.
    [(number, url)] = api.sign(upload_id, [2]).items()
    assert number == 2
    etags[2] = put_part(url, part(data, size, 2))
    completed = api.complete(upload_id, etags)
    assert completed.status_code == 200, completed.content
    assert completed.json()["status"] == "ready"
    assert completed.json()["size"] == len(data)
    assert bucket.read(key) == data
    assert bucket.open_uploads() == []

    # Completed is completed: a second complete finds no upload.
    assert_error(api.complete(upload_id, etags), 404, "not_found")


# --- 3. download ------------------------------------------------------------------------------


def test_the_other_participant_downloads_by_presigned_url_under_the_original_name(
    bucket, buyer, seller, stranger, conversation
):
    name = "Résumé final.pdf"
    data = pdf(64_000, seed=3)
    api = Api(buyer)
    completed = api.upload(conversation, name, data)
    assert completed.status_code == 200, completed.content
    attachment_id = completed.json()["id"]
    seller_api = Api(seller)
    # Not sent yet: the uploader's alone.
    assert_error(seller_api.get(f"/attachments/{attachment_id}/download"), 404, "not_found")
    api.send(conversation, [attachment_id])
    assert Attachment.objects.get(pk=attachment_id).last_accessed_at is None

    before = timezone.now()
    response = seller_api.get(f"/attachments/{attachment_id}/download")
    assert response.status_code == 302, response.content
    url = response["Location"]
    assert url.startswith(bucket.client.meta.endpoint_url + "/")
    assert query(url)["X-Amz-Expires"] == "300"  # ATTACHMENT_URL_EXPIRE_SECONDS
    assert "X-Amz-Signature" in query(url)

    fetched = httpx.get(url, timeout=30)
    assert fetched.status_code == 200
    assert fetched.content == data
    assert fetched.headers["Content-Type"] == "application/pdf"
    disposition = fetched.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''" in disposition
    assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == name
    fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii() and fallback.endswith(" final.pdf")

    accessed = Attachment.objects.get(pk=attachment_id).last_accessed_at
    assert accessed is not None and before <= accessed <= timezone.now()

    refused = Api(stranger)
    assert_error(refused.get(f"/attachments/{attachment_id}/download"), 404, "not_found")
    assert_error(refused.get(f"/attachments/{attachment_id}"), 404, "not_found")
    assert Attachment.objects.get(pk=attachment_id).last_accessed_at == accessed


# --- 4. archive and restore -------------------------------------------------------------------


def test_an_idle_file_is_archived_to_glacier_restored_on_demand_and_the_asker_told(
    bucket, settings, buyer, seller, conversation
):
    file, data = sent_file(buyer, conversation)
    key = Attachment.objects.get(pk=file["id"]).key
    Attachment.objects.filter(pk=file["id"]).update(
        created_at=timezone.now() - timedelta(days=settings.ATTACHMENT_ARCHIVE_AFTER_DAYS + 1)
    )

    out = StringIO()
    call_command("archive_attachments", stdout=out, stderr=StringIO())
    assert out.getvalue().startswith("archived 1 files")
    assert Attachment.objects.get(pk=file["id"]).status == "archived"
    head = bucket.head(key)
    assert head["StorageClass"] == settings.ATTACHMENT_ARCHIVE_STORAGE_CLASS == "GLACIER"
    assert "Restore" not in head
    assert bucket.keys() == [key]  # still there, in the archive class

    # S3 itself now refuses the bytes, whoever signed the URL.
    refused = httpx.get(bucket.presigned_get(key), timeout=30)
    assert refused.status_code == 403
    assert "InvalidObjectState" in refused.text

    seller_api = Api(seller)
    asked = timezone.now()
    body = assert_error(seller_api.get(f"/attachments/{file['id']}/download"), 409, "restore_in_progress")
    ready_at = datetime.fromisoformat(body["ready_at"])
    expected = asked + timedelta(hours=settings.ATTACHMENT_RESTORE_HOURS)
    assert abs(ready_at - expected) < timedelta(minutes=1)
    restoring = Attachment.objects.get(pk=file["id"])
    assert restoring.status == "restoring"
    assert restoring.restore_requested_by_id == seller.pk
    assert "Restore" in bucket.head(key)  # S3 got the RestoreObject
    listed = Api(buyer).get(f"/conversations/{conversation.pk}/messages").json()["items"]
    assert [a["status"] for m in listed for a in m["attachments"]] == ["restoring"]

    # moto finishes a restore at once: S3's Restore header says so, and the beat notices.
    assert 'ongoing-request="false"' in bucket.head(key)["Restore"]
    assert services.finish_restores() == 1
    restored = Attachment.objects.get(pk=file["id"])
    assert restored.status == "attached"
    assert restored.restored_until is not None
    assert abs(
        restored.restored_until - (asked + timedelta(days=settings.ATTACHMENT_RESTORED_DAYS))
    ) < timedelta(days=1)  # S3's expiry-date (midnight-rounded on AWS)
    [notification] = Notification.objects.filter(kind="file_restored")
    assert notification.recipient_id == seller.pk
    assert "brief.pdf" in notification.title
    assert services.finish_restores() == 0  # told once

    response = seller_api.get(f"/attachments/{file['id']}/download")
    assert response.status_code == 302, response.content
    fetched = httpx.get(response["Location"], timeout=30)
    assert fetched.status_code == 200
    assert fetched.content == data


# --- 5. purge ---------------------------------------------------------------------------------


def test_old_files_are_purged_to_a_placeholder_and_abandoned_uploads_aborted(
    bucket, settings, buyer, seller, conversation
):
    sent, _data = sent_file(buyer, conversation)
    sent_key = Attachment.objects.get(pk=sent["id"]).key
    api = Api(buyer)
    # Abandoned mid-way: one part of three sent, never completed.
    abandoned = api.start(conversation, "big.pdf", 11 * MiB)
    [url] = api.sign(abandoned["attachment_id"], [1]).values()
    put_part(url, pdf(11 * MiB, seed=5)[: abandoned["part_size"]])
    # Uploaded and checked, never sent.
    unsent = api.upload(conversation, "draft.pdf", pdf(30_000, seed=6)).json()
    unsent_key = Attachment.objects.get(pk=unsent["id"]).key
    assert bucket.open_uploads() == [Attachment.objects.get(pk=abandoned["attachment_id"]).key]
    assert sorted(bucket.keys()) == sorted([sent_key, unsent_key])

    # A day later: the unsent uploads go (the open multipart upload is aborted), the sent file stays.
    assert sum(services.purge_old(now=timezone.now() + timedelta(days=1, hours=1))) == 2
    assert list(Attachment.objects.values_list("pk", flat=True)) == [sent["id"]]
    assert bucket.open_uploads() == []
    assert bucket.keys() == [sent_key]

    # Past ATTACHMENT_PURGE_AFTER_DAYS: the bytes go, the message keeps a placeholder.
    later = timezone.now() + timedelta(days=settings.ATTACHMENT_PURGE_AFTER_DAYS + 1)
    assert sum(services.purge_old(now=later)) == 1
    with pytest.raises(ClientError) as missing:
        bucket.head(sent_key)
    assert missing.value.response["Error"]["Code"] == "404"
    assert bucket.keys() == []
    expired = Attachment.objects.get(pk=sent["id"])
    assert expired.status == "expired" and expired.purged_at == later and expired.message_id

    seller_api = Api(seller)
    items = seller_api.get(f"/conversations/{conversation.pk}/messages").json()["items"]
    [file] = [a for m in items for a in m["attachments"]]
    assert file["id"] == sent["id"] and file["status"] == "expired" and file["name"] == "brief.pdf"
    assert_error(seller_api.get(f"/attachments/{sent['id']}/download"), 410, "file_expired")
    assert sum(services.purge_old(now=later)) == 0


# --- 6. refused input -------------------------------------------------------------------------


def test_an_announced_size_over_the_limit_is_refused_before_anything_is_created(
    bucket, settings, buyer, conversation
):
    settings.ATTACHMENT_MAX_BYTES = MiB
    response = Api(buyer).post(
        f"/conversations/{conversation.pk}/uploads", {"name": "big.pdf", "size": MiB + 1}
    )
    assert_error(response, 422, "file_too_large")
    assert_nothing_stored(bucket)


def test_more_bytes_than_announced_are_refused_and_deleted(bucket, settings, buyer, conversation):
    settings.ATTACHMENT_MAX_BYTES = MiB
    api = Api(buyer)
    started = api.start(conversation, "brief.pdf", 10_000)
    assert started["part_count"] == 1
    [url] = api.sign(started["attachment_id"], [1]).values()
    etag = put_part(url, pdf(20_000))  # the bucket takes whatever the browser sends
    assert_error(api.complete(started["attachment_id"], {1: etag}), 409, "size_mismatch")
    assert_nothing_stored(bucket)

    # Announced within the limit, sent over it: too large, deleted as well.
    started = api.start(conversation, "brief.pdf", MiB)
    [url] = api.sign(started["attachment_id"], [1]).values()
    etag = put_part(url, pdf(MiB + 1))
    assert_error(api.complete(started["attachment_id"], {1: etag}), 422, "file_too_large")
    assert_nothing_stored(bucket)


@pytest.mark.parametrize(
    "name, data, code",
    [
        ("photo.png", pdf(20_000), "file_type_mismatch"),  # a PDF dressed as an image
        ("tool", elf(), "file_type_not_allowed"),
        ("setup.exe", exe(), "file_type_not_allowed"),
        ("invoice.pdf", exe(), "file_type_not_allowed"),
    ],
)
def test_content_that_is_not_allowed_or_not_what_its_name_says_is_refused_and_deleted(
    bucket, buyer, conversation, name, data, code
):
    response = Api(buyer).upload(conversation, name, data, content_type="application/pdf")
    assert_error(response, 403, code)
    assert_nothing_stored(bucket)


BAD_NAMES = {
    "dotdot-slash": "../../etc/passwd",
    "dotdot-backslash": "..\\windows\\system.ini",
    "nul": "report\u0000.pdf",  # "\u0000" in the JSON body
    "newline": "report\n.pdf",
    "500-characters": "x" * 496 + ".pdf",
    "blank": "   ",
}


def test_names_that_are_paths_or_hold_control_characters_are_refused(bucket, buyer, conversation):
    api = Api(buyer)
    for label, name in BAD_NAMES.items():
        body = json.dumps({"name": name, "size": 1000})
        assert label != "nul" or "\\u0000" in body
        response = api.client.post(
            f"{API}/conversations/{conversation.pk}/uploads",
            data=body,
            content_type="application/json",
            **api.headers,
        )
        assert response.status_code == 422, (label, response.content)
        assert response.json()["error"] == "invalid_name", (label, response.json())
    assert_nothing_stored(bucket)


def test_nobody_signs_or_completes_someone_elses_upload(bucket, buyer, seller, stranger, conversation):
    api = Api(buyer)
    data = pdf(30_000)
    started = api.start(conversation, "brief.pdf", len(data))
    upload_id = started["attachment_id"]
    [url] = api.sign(upload_id, [1]).values()
    etag = put_part(url, data)

    for other in (seller, stranger):
        other_api = Api(other)
        assert_error(other_api.post(f"/uploads/{upload_id}/parts", {"part_numbers": [1]}), 404, "not_found")
        assert_error(other_api.complete(upload_id, {1: etag}), 404, "not_found")
        assert_error(other_api.delete(f"/uploads/{upload_id}"), 404, "not_found")
        assert_error(other_api.get(f"/attachments/{upload_id}"), 404, "not_found")
    assert Attachment.objects.get(pk=upload_id).status == "uploading"
    assert bucket.keys() == [] and len(bucket.open_uploads()) == 1

    # Its owner may abandon it: the multipart upload is aborted.
    assert api.delete(f"/uploads/{upload_id}").status_code == 204
    assert_nothing_stored(bucket)


def test_presigned_urls_carry_the_configured_lifetime(bucket, settings, buyer, seller, conversation):
    settings.ATTACHMENT_URL_EXPIRE_SECONDS = 1
    api = Api(buyer)
    started = api.start(conversation, "brief.pdf", 30_000)
    [upload_url] = api.sign(started["attachment_id"], [1]).values()
    assert query(upload_url)["X-Amz-Expires"] == "1"
    completed = api.complete(started["attachment_id"], {1: put_part(upload_url, pdf(30_000))})
    api.send(conversation, [completed.json()["id"]])
    download = Api(seller).get(f"/attachments/{completed.json()['id']}/download")
    assert download.status_code == 302
    assert query(download["Location"])["X-Amz-Expires"] == "1"
