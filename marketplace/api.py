"""The versioned JSON API: one NinjaAPI, routers from each app, errors as {"error", "detail"}."""

from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer, django_auth

from marketplace.accounts.services import user_for_api_token
from marketplace.api_errors import error_code_for
from marketplace.errors import DomainError


class BearerTokenAuth(HttpBearer):
    """`Authorization: Bearer <token>` from POST /api/v1/auth/token."""

    def authenticate(self, request, token):
        user = user_for_api_token(token)
        if user is None:
            # A bad token is refused outright, never a fallback to the session cookie.
            raise AuthenticationError()
        request.user = user
        return user


api = NinjaAPI(
    title="Marketplace Inbox API",
    version="1",
    urls_namespace="api-v1",
    auth=[BearerTokenAuth(), django_auth],
    docs_url="/docs",
    openapi_url="/openapi.json",
)


def error_response(request, status: int, code: str, detail: str, **extra):
    return api.create_response(request, {"error": code, "detail": detail, **extra}, status=status)


def _describe_validation_errors(errors: list[dict]) -> str:
    parts = []
    for error in errors:
        loc = list(error.get("loc", ()))
        for prefix in ("body", "payload"):  # where ninja put it, not the field's name ("body" is one)
            if loc and loc[0] == prefix:
                loc = loc[1:]
        location = ".".join(str(part) for part in loc)
        message = error.get("msg", "is invalid")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts) or "The request is invalid."


@api.exception_handler(DomainError)
def on_domain_error(request, exc: DomainError):
    return error_response(request, exc.status, exc.code, exc.detail, **exc.extra)


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    fields = [
        {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors
    ]
    return error_response(
        request, 422, "invalid_input", _describe_validation_errors(exc.errors), fields=fields
    )


@api.exception_handler(AuthenticationError)
def on_authentication_error(request, exc: AuthenticationError):
    return error_response(
        request,
        401,
        "unauthorized",
        "Log in, or send 'Authorization: Bearer <token>' from POST /api/v1/auth/token.",
    )


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    return error_response(request, exc.status_code, error_code_for(exc.status_code), str(exc))


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return error_response(request, 404, "not_found", "Not found.")


api.add_router("/", "marketplace.accounts.api.router")
api.add_router("/", "inbox.api.router")
api.add_router("/", "moderation.api.router")
api.add_router("/", "orders.api.router")
api.add_router("/", "notifications.api.router")
api.add_router("/", "sellers.api.router")
api.add_router("/", "attachments.api.router")
