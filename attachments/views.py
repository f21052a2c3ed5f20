"""Downloads from the site's pages: the same service as the API, with a page (not JSON) when
the file is being restored or has expired."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from marketplace.errors import Conflict, Gone, NotFound

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
