"""Where attachment bytes live, behind one small interface with two implementations:

- `S3Store`: the bucket of Django's default storage (django-storages' S3Storage: AWS, MinIO,
  any S3-compatible store) through its boto3 client. Browsers upload parts straight to the
  bucket with presigned URLs; downloads redirect to a presigned GET; archival changes the
  object's storage class (GLACIER by default), after which S3 itself refuses a plain GET until
  a RestoreObject has completed.
- `LocalStore`: the embedded default, files under MEDIA_ROOT. Uploads come through the server
  in parts (the same protocol as the bucket's, with this server's signed part URLs), each part
  streamed to disk, then joined; downloads stream from disk; archival moves the file to an
  archive folder, and a restore moves it back once its (simulated) delay has passed.
"""

import hashlib
import logging
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.core.files.storage import storages
from django.urls import reverse
from django.utils import timezone

logger = logging.getLogger(__name__)
PART_SALT = "attachments.upload-part"
READ_CHUNK = 1024 * 1024


def _read_files(paths):
    for path in paths:
        with open(path, "rb") as source:
            while chunk := source.read(READ_CHUNK):
                yield chunk


def _md5_etag(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in _read_files([path]):
        digest.update(chunk)
    return f'"{digest.hexdigest()}"'


@dataclass(frozen=True)
class RestoreState:
    done: bool
    restored_until: datetime | None = None


class UploadIncomplete(Exception):
    """A multipart upload cannot be assembled: a part is missing or its ETag is wrong."""


class LocalStore:
    """Multipart uploads work as with S3, but the part URLs are this server's (a signed token
    per part) and each part is one bounded request: daphne holds a request body in memory
    whole, so a 1 GB file in one request would cost 1 GB; in parts it costs one part."""

    signed_downloads = False

    def __init__(self, root: Path):
        self.root = Path(root) / "attachments"
        self.archive_root = Path(root) / "attachments-archive"
        self.uploads_root = Path(root) / "attachments-uploads"

    def _parts_dir(self, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise ValueError(f"not an upload id: {upload_id!r}")
        return self.uploads_root / upload_id

    def create_upload(self, key: str, content_type: str) -> str:
        upload_id = uuid.uuid4().hex
        self._parts_dir(upload_id).mkdir(parents=True)
        return upload_id

    def sign_part(self, key: str, upload_id: str, part_number: int) -> str:
        token = signing.dumps({"u": upload_id, "n": part_number}, salt=PART_SALT)
        return reverse("attachments:upload-part", args=[token])

    def save_part(self, upload_id: str, part_number: int, chunks) -> str:
        """Store one part (replacing an earlier attempt); its ETag is the MD5 of its bytes."""
        folder = self._parts_dir(upload_id)
        if not folder.is_dir():
            raise UploadIncomplete("This upload is closed.")
        digest = hashlib.md5(usedforsecurity=False)
        partial = folder / f"{part_number}.partial"
        with open(partial, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
        partial.replace(folder / str(part_number))
        return f'"{digest.hexdigest()}"'

    def complete_upload(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Join the parts, in order, into the file (streamed), checking each one's ETag."""
        folder = self._parts_dir(upload_id)
        chunk_paths = []
        for part_number, etag in parts:
            path = folder / str(part_number)
            if not path.is_file() or _md5_etag(path) != etag.strip():
                raise UploadIncomplete(f"Part {part_number} is missing or its ETag is wrong.")
            chunk_paths.append(path)
        self.save(key, _read_files(chunk_paths))
        shutil.rmtree(folder, ignore_errors=True)

    def abort_upload(self, key: str, upload_id: str) -> None:
        shutil.rmtree(self._parts_dir(upload_id), ignore_errors=True)

    def _path(self, key: str, *, archived: bool = False) -> Path:
        path = (self.archive_root if archived else self.root) / key
        # Keys are built by services.storage_key (uuid/sanitised name); never trust one blindly.
        if not path.resolve().is_relative_to((self.archive_root if archived else self.root).resolve()):
            raise ValueError(f"attachment key outside the store: {key!r}")
        return path

    def save(self, key: str, chunks) -> int:
        """Write the chunks to `key`, returning the size; nothing is left behind on failure."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        try:
            with open(path, "xb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return size

    def head(self, key: str, length: int) -> bytes:
        with open(self._path(key), "rb") as source:
            return source.read(length)

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def exists(self, key: str) -> bool:
        return self._path(key).exists() or self._path(key, archived=True).exists()

    def open(self, key: str):
        # The file may sit in the archive folder while its row still says sent: archived by a run
        # that had not committed when the download checked the row, or whose commit failed.
        # Serving that copy is right; failing with a 500 is not.
        live = self._path(key)
        return open(live if live.exists() else self._path(key, archived=True), "rb")

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
        self._path(key, archived=True).unlink(missing_ok=True)

    def archive(self, key: str) -> None:
        source, target = self._path(key), self._path(key, archived=True)
        if source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(source, target)

    def start_restore(self, key: str) -> datetime:
        """When the file will be back (the local store has no real delay; it keeps S3's)."""
        return timezone.now() + timedelta(hours=settings.ATTACHMENT_RESTORE_HOURS)

    def restore_state(self, key: str, *, ready_at: datetime | None) -> RestoreState:
        if ready_at is not None and ready_at > timezone.now():
            return RestoreState(done=False)
        source, target = self._path(key, archived=True), self._path(key)
        if source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(source, target)
        return RestoreState(done=True, restored_until=None)  # back for good, until archived again


class S3Store:
    signed_downloads = True

    def __init__(self, storage):
        self.client = storage.connection.meta.client
        self.bucket = storage.bucket_name

    def create_upload(self, key: str, content_type: str) -> str:
        response = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=content_type or "application/octet-stream"
        )
        return response["UploadId"]

    def sign_part(self, key: str, upload_id: str, part_number: int) -> str:
        return self.client.generate_presigned_url(
            "upload_part",
            Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": part_number},
            ExpiresIn=settings.ATTACHMENT_URL_EXPIRE_SECONDS,
        )

    def complete_upload(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in parts]},
            )
        except self.client.exceptions.ClientError as exc:
            raise UploadIncomplete(str(exc)) from exc

    def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except self.client.exceptions.ClientError:  # already completed or aborted
            logger.info("multipart upload %s of %s was already closed", upload_id, key)

    def save(self, key: str, chunks) -> int:
        """Server-side writes (thumbnails): small files only."""
        body = b"".join(chunks)
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)
        return len(body)

    def head(self, key: str, length: int) -> bytes:
        response = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{length - 1}")
        return response["Body"].read()

    def size(self, key: str) -> int:
        return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.ClientError:
            return False
        return True

    def open(self, key: str):
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"]

    def download_url(self, key: str, *, filename_header: str, content_type: str) -> str:
        return self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": filename_header,
                "ResponseContentType": content_type or "application/octet-stream",
            },
            ExpiresIn=settings.ATTACHMENT_URL_EXPIRE_SECONDS,
        )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def archive(self, key: str) -> None:
        """Copy the object onto itself in the archive storage class: S3 then refuses GETs."""
        self.client.copy_object(
            Bucket=self.bucket,
            Key=key,
            CopySource={"Bucket": self.bucket, "Key": key},
            StorageClass=settings.ATTACHMENT_ARCHIVE_STORAGE_CLASS,
            MetadataDirective="COPY",
        )

    def start_restore(self, key: str) -> datetime:
        try:
            self.client.restore_object(
                Bucket=self.bucket, Key=key, RestoreRequest={"Days": settings.ATTACHMENT_RESTORED_DAYS}
            )
        except self.client.exceptions.ClientError as exc:
            # Asked twice: S3 answers RestoreAlreadyInProgress, which is what we wanted.
            if exc.response.get("Error", {}).get("Code") != "RestoreAlreadyInProgress":
                raise
        return timezone.now() + timedelta(hours=settings.ATTACHMENT_RESTORE_HOURS)

    def restore_state(self, key: str, *, ready_at: datetime | None) -> RestoreState:
        """S3's own answer, from the object's Restore header:
        'ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"' once done."""
        header = self.client.head_object(Bucket=self.bucket, Key=key).get("Restore") or ""
        if 'ongoing-request="false"' not in header:
            return RestoreState(done=False)
        until = None
        if 'expiry-date="' in header:
            until = parsedate_to_datetime(header.split('expiry-date="', 1)[1].split('"', 1)[0])
        return RestoreState(done=True, restored_until=until)


def blob_store():
    """The store for Django's default storage: S3 when a bucket is configured, else local."""
    from storages.backends.s3 import S3Storage

    storage = storages["default"]
    if isinstance(storage, S3Storage):
        return S3Store(storage)
    return LocalStore(settings.MEDIA_ROOT)
