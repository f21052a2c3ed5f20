"""Attachments over the API: upload (PUT through the server, or multipart straight to the
bucket), the file's details, download, thumbnail."""

from django.conf import settings
from django.http import FileResponse, HttpResponseRedirect
from ninja import Field, Query, Router, Schema, Status

from inbox import selectors as inbox_selectors
from marketplace.api_inputs import BodyIn, JsonInt, declared
from marketplace.errors import InvalidInput, NotFound

from . import selectors, services
from .payloads import attachment_payload
from .storage import blob_store

router = Router(tags=["attachments"])
READ_CHUNK = 1024 * 1024


class AttachmentOut(Schema):
    id: int
    name: str = Field(description="As the uploader named it")
    size: int
    content_type: str = Field(description="Sniffed from the content")
    status: str = Field(description="ready (uploaded, not sent), attached, archived, restoring, expired")
    download_url: str
    thumbnail_url: str | None


def _membership(request, conversation_id):
    return inbox_selectors.conversation_for_user(user=request.user, conversation_id=conversation_id)


def _request_chunks(request):
    while chunk := request.read(READ_CHUNK):
        yield chunk


# invalid_name (services.clean_name)
FILE_NAME = {"minLength": 1, "maxLength": services.NAME_MAX, "pattern": services.NAME_PATTERN}
# empty_file, file_too_large
FILE_SIZE = {"minimum": 1, "maximum": settings.ATTACHMENT_MAX_BYTES}


class UploadQuery(Schema):
    name: str = declared(description="The file's name as the user sees it", **FILE_NAME)


# The bytes themselves: their type is sniffed and checked (403 file_type_not_allowed).
RAW_FILE_BODY = {
    "required": True,
    "content": {
        "application/octet-stream": {
            "schema": {
                "type": "string",
                "format": "binary",
                "minLength": 1,
                "maxLength": settings.ATTACHMENT_PART_BYTES,
            }
        }
    },
}


@router.put(
    "/conversations/{int:conversation_id}/attachments",
    response={201: AttachmentOut},
    openapi_extra={"requestBody": RAW_FILE_BODY},
)
def upload(request, conversation_id: int, query: Query[UploadQuery]):
    """The file is the request body (Content-Length required), streamed to storage; `name` is
    its name as the user sees it. Send it with a message by id (`attachments`)."""
    membership = _membership(request, conversation_id)
    try:
        size = int(request.headers.get("Content-Length", ""))
    except ValueError:
        raise InvalidInput("Send the file's size as Content-Length.", code="length_required") from None
    attachment = services.upload_stream(
        user=request.user,
        conversation=membership.conversation,
        name=query.name,
        size=size,
        chunks=_request_chunks(request),
    )
    return Status(201, attachment_payload(attachment))


class UploadIn(BodyIn):
    name: str = Field(max_length=1000, json_schema_extra=FILE_NAME)
    size: JsonInt = declared(description="Bytes", **FILE_SIZE)
    content_type: str = Field("", max_length=200)


class UploadOut(Schema):
    attachment_id: int
    part_size: int = Field(description="Bytes per part; the last part is the rest")
    part_count: int


@router.post("/conversations/{int:conversation_id}/uploads", response={201: UploadOut})
def start_upload(request, conversation_id: int, payload: UploadIn):
    """Start a multipart upload: the client then PUTs parts to the URLs /uploads/{id}/parts signs
    (the bucket's presigned URLs, or this server's own with local storage)."""
    membership = _membership(request, conversation_id)
    started = services.start_upload(
        user=request.user,
        conversation=membership.conversation,
        name=payload.name,
        size=payload.size,
        content_type=payload.content_type,
    )
    return Status(
        201,
        {
            "attachment_id": started.attachment.pk,
            "part_size": started.part_size,
            "part_count": started.part_count,
        },
    )


# A part number names one of the upload's `part_count` parts (409 invalid_part past them).
PART_NUMBER = {"minimum": 1, "maximum": services.MAX_PARTS}


class PartsIn(BodyIn):
    part_numbers: list[JsonInt] = Field(
        max_length=services.MAX_PARTS,
        json_schema_extra={"minItems": 1, "items": {"type": "integer", **PART_NUMBER}},
    )


class PartsOut(Schema):
    urls: dict[int, str] = Field(description="PUT each part's bytes to its URL; keep the ETag header")


@router.post("/uploads/{int:attachment_id}/parts", response=PartsOut)
def sign_parts(request, attachment_id: int, payload: PartsIn):
    return {
        "urls": services.sign_parts(
            user=request.user, attachment_id=attachment_id, part_numbers=payload.part_numbers
        )
    }


class CompletedPart(BodyIn):
    part_number: JsonInt = declared(**PART_NUMBER)
    etag: str = Field(max_length=200)


class CompleteIn(BodyIn):
    parts: list[CompletedPart] = Field(max_length=services.MAX_PARTS)


@router.post("/uploads/{int:attachment_id}/complete", response=AttachmentOut)
def complete_upload(request, attachment_id: int, payload: CompleteIn):
    attachment = services.complete_upload(
        user=request.user,
        attachment_id=attachment_id,
        parts=[(part.part_number, part.etag) for part in payload.parts],
    )
    return attachment_payload(attachment)


@router.delete("/uploads/{int:attachment_id}", response={204: None})
def abort_upload(request, attachment_id: int):
    services.abort_upload(user=request.user, attachment_id=attachment_id)
    return Status(204, None)


@router.get("/attachments/{int:attachment_id}", response=AttachmentOut)
def get_attachment(request, attachment_id: int):
    return attachment_payload(selectors.attachment_for_user(user=request.user, attachment_id=attachment_id))


@router.get("/attachments/{int:attachment_id}/download", url_name="download_attachment")
def download_attachment(request, attachment_id: int):
    """302 to a signed URL valid for minutes (bucket) or the bytes (local), as an attachment
    with the original name. 409 restore_in_progress for an archived file, 410 once expired."""
    attachment = selectors.attachment_for_user(user=request.user, attachment_id=attachment_id)
    return file_response(services.download(user=request.user, attachment=attachment))


@router.get("/attachments/{int:attachment_id}/thumbnail", url_name="attachment_thumbnail")
def attachment_thumbnail(request, attachment_id: int):
    attachment = selectors.attachment_for_user(user=request.user, attachment_id=attachment_id)
    if not attachment.thumbnail_key:
        raise NotFound("This file has no thumbnail.")
    store = blob_store()
    if store.signed_downloads:
        return HttpResponseRedirect(
            store.download_url(attachment.thumbnail_key, filename_header="inline", content_type="image/jpeg")
        )
    return FileResponse(store.open(attachment.thumbnail_key), content_type="image/jpeg")


def file_response(download: services.Download):
    """The download as an HTTP answer: a redirect to the signed URL, or the streamed file."""
    if download.url is not None:
        return HttpResponseRedirect(download.url)
    attachment = download.attachment
    response = FileResponse(
        blob_store().open(attachment.key), content_type=services.served_type(attachment.content_type)
    )
    response["Content-Disposition"] = services.content_disposition(attachment.name)
    response["X-Content-Type-Options"] = "nosniff"
    return response
