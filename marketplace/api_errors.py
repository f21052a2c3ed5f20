"""Every 4xx under /api/ is JSON {"error", "detail"}, including the ones answered before the
API's own handlers run: an unknown path (Django's 404), a wrong method (ninja's 405), a failed
CSRF check (403)."""

from http import HTTPStatus

from django.http import JsonResponse

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
