"""Downloads from the site's pages: the same service as the API, with a page (not JSON) when
the file is being restored or has expired."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from marketplace.errors import Conflict, DomainError, Gone, NotFound

from . import selectors, services
from .api import file_response


@login_required
@require_GET
def download(request, attachment_id):
    try:
        attachment = selectors.attachment_for_user(user=request.user, attachment_id=attachment_id)
        return file_response(services.download(user=request.user, attachment=attachment))
    except NotFound:
        raise Http404("File not found.") from None
    except (Conflict, Gone) as exc:
        return render(
            request,
            "attachments/unavailable.html",
            {"attachment": attachment, "detail": exc.detail, "ready_at": exc.extra.get("ready_at")},
            status=exc.status,
        )


READ_CHUNK = 1024 * 1024


def _body_chunks(request):
    while chunk := request.read(READ_CHUNK):
        yield chunk


@csrf_exempt  # the signed token in the URL is the credential, as with a bucket's presigned URL
@require_http_methods(["PUT"])
def upload_part(request, token):
    """One part of a multipart upload to the local store (the part URLs the API hands out)."""
    try:
        size = int(request.headers.get("Content-Length", ""))
    except ValueError:
        size = None
    try:
        etag = services.receive_part(token=token, size=size, chunks=_body_chunks(request))
    except DomainError as exc:
        return JsonResponse({"error": exc.code, "detail": exc.detail}, status=exc.status)
    response = HttpResponse(status=200)
    response["ETag"] = etag
    return response


def upload_context(conversation_id: int) -> dict:
    """How the composer uploads files (static/inbox/attachments.js): always in parts, to the
    part URLs the server signs (the bucket's presigned URLs, or this server's own for the local
    store, where each part is one bounded request)."""
    return {
        "upload": {
            "url": reverse("api-v1:start_upload", args=[conversation_id]),
            # /api/v1/uploads/: + <id>/parts, <id>/complete, <id> (DELETE aborts)
            "uploads_base": reverse("api-v1:abort_upload", args=[0]).removesuffix("0"),
            "max_files": settings.ATTACHMENTS_PER_MESSAGE,
            "max_bytes": settings.ATTACHMENT_MAX_BYTES,
        }
    }
