"""Every 4xx under /api/ is JSON {"error", "detail"}, including the ones answered before the
API's own handlers run: an unknown path (Django's 404), a wrong method (ninja's 405), a failed
CSRF check (403).

And the database being unreachable is a 503 with Retry-After, never a 500: JSON
`{"error": "service_unavailable", "detail": ...}` under /api/ (and to requests that accept
JSON), a short page otherwise.
"""

import logging
import sys
from http import HTTPStatus

from django.contrib.auth.models import AnonymousUser
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.debug import ExceptionReporter

logger = logging.getLogger(__name__)

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "too_large",
    422: "invalid_input",
    429: "too_many_requests",
    503: "service_unavailable",
}


def error_code_for(status: int) -> str:
    return ERROR_CODES.get(status, "error")


def _detail_for(response) -> str:
    status = response.status_code
    if status == 404:
        return "No such endpoint or object."
    if status == 405:
        return f"Method not allowed here; use {response.get('Allow', 'another method')}."
    if status == 403:
        return "Forbidden. Browsers send X-CSRFToken with their session; other clients use a bearer token."
    return HTTPStatus(status).phrase + "."


class ApiJsonErrorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and 400 <= response.status_code < 500
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            replacement = JsonResponse(
                {"error": error_code_for(response.status_code), "detail": _detail_for(response)},
                status=response.status_code,
            )
            if response.has_header("Allow"):
                replacement["Allow"] = response["Allow"]
            return replacement
        return response


# OperationalError: cannot connect, connection lost, pool timeout (and lock or statement timeouts,
# which a retry also cures). InterfaceError: a connection already closed.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_DETAIL = (
    "The service is briefly unavailable: its database cannot be reached. Try again in a few "
    "seconds; a message sent again with the same client_id is stored once."
)
# The same for the pages' scripts (the composer keeps its text and its client_id on a 5xx).
PAGE_UNAVAILABLE_DETAIL = (
    "The inbox is briefly unavailable. Your text is kept: send it again in a few seconds."
)


def service_unavailable_response(request) -> HttpResponse:
    """JSON for the API and for the pages' scripts (fetch and htmx requests are not navigations),
    the 503 page for a browser navigating."""
    if request.path.startswith("/api/"):
        response = JsonResponse({"error": "service_unavailable", "detail": UNAVAILABLE_DETAIL}, status=503)
    elif (
        "application/json" in request.headers.get("Accept", "")
        or request.headers.get("Sec-Fetch-Mode", "navigate") != "navigate"
    ):
        response = JsonResponse(
            {"error": "service_unavailable", "detail": PAGE_UNAVAILABLE_DETAIL}, status=503
        )
    else:
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """The first middleware: a view that fails to reach the database answers 503
    (process_exception); so does any middleware inside this one (the session, the user's time
    zone), whose exception Django has already turned into a 500 by the time it gets here: the
    signal below marks such a request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, "database_unavailable", False):
            return service_unavailable_response(request)
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, DATABASE_UNAVAILABLE):
            logger.warning("503 for %s: database unavailable: %s", request.path, exception)
            return service_unavailable_response(request)
        return None


def _mark_database_unavailable(sender, request=None, **kwargs):
    if request is not None and isinstance(sys.exc_info()[1], DATABASE_UNAVAILABLE):
        request.database_unavailable = True
        # The 500 that Django renders before the middleware replaces it must not wait for the
        # database again: DEBUG's page shows the user and every frame's variables, and each
        # lazy user or queryset among them would wait a pool timeout.
        request.user = AnonymousUser()
        request.exception_reporter_class = _NoReport


class _NoReport(ExceptionReporter):
    def get_traceback_html(self):
        return ""

    def get_traceback_text(self):
        return ""


got_request_exception.connect(_mark_database_unavailable, dispatch_uid="api_errors.database_unavailable")
