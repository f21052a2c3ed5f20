"""The versioned JSON API: one NinjaAPI, routers from each app, errors as {"error", "detail"}."""

import logging

from django.db import InterfaceError, OperationalError
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer, django_auth

from marketplace.accounts.services import user_for_api_token
from marketplace.api_errors import (
    RETRY_AFTER_SECONDS,
    UNAVAILABLE_DETAIL,
    error_code_for,
)
from marketplace.errors import DomainError

logger = logging.getLogger(__name__)


class BearerTokenAuth(HttpBearer):
    """`Authorization: Bearer <token>` from POST /api/v1/auth/token."""

    def authenticate(self, request, token):
        user = user_for_api_token(token)
        if user is None:
            # A bad token is refused outright, never a fallback to the session cookie.
            raise AuthenticationError()
        request.user = user
        return user


# Every 4xx of the API has this body (some add fields: `fields`, `cursor`, ...; docs/API.md §3).
API_ERROR_SCHEMA = {
    "title": "ApiError",
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    "required": ["error", "detail"],
}


class MarketplaceApi(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        _document_error_responses(schema)
        _declare_links(schema)
        return schema


# OpenAPI links: what an answer gives that other operations take. Producer operationId ->
# {path parameter: where the producer's successful answer holds its value}; every other
# operation with that path parameter is linked. Clients follow them; so does the stateful fuzzer
# (tests/security/test_api_stateful.py), which chains the calls through them.
LINKS = {
    "inbox_api_start_conversation": {"conversation_id": "$response.body#/id"},
    "inbox_api_list_conversations": {"conversation_id": "$response.body#/items/0/id"},
    "orders_api_send_request": {"conversation_id": "$response.body#/conversation_id"},
    "inbox_api_send_message": {"message_id": "$response.body#/id"},
    "inbox_api_list_messages": {"message_id": "$response.body#/items/0/id"},
    "inbox_api_create_label": {"label_id": "$response.body#/id"},
    "inbox_api_list_labels": {"label_id": "$response.body#/0/id"},
    "orders_api_create_gig": {"gig_id": "$response.body#/id"},
    "orders_api_list_gigs": {"gig_id": "$response.body#/items/0/id"},
    "orders_api_create_offer": {"offer_id": "$response.body#/id"},
    "orders_api_accept_offer": {"number": "$response.body#/number"},
    "orders_api_list_orders": {"number": "$response.body#/items/0/number"},
    "orders_api_start_call": {"call_id": "$response.body#/id"},
    "notifications_api_list_notifications": {"notification_id": "$response.body#/items/0/id"},
    "sellers_api_create_quick_response": {"quick_response_id": "$response.body#/id"},
    "sellers_api_list_quick_responses": {"quick_response_id": "$response.body#/0/id"},
    "attachments_api_upload": {"attachment_id": "$response.body#/id"},
    "attachments_api_start_upload": {"attachment_id": "$response.body#/attachment_id"},
    "attachments_api_complete_upload": {"attachment_id": "$response.body#/id"},
}


def _declare_links(schema) -> None:
    operations = {
        operation["operationId"]: operation
        for methods in schema["paths"].values()
        for operation in methods.values()
    }
    takes = {  # path parameter -> the operations that take it
        name: [
            operation_id
            for operation_id, operation in operations.items()
            if any(p["in"] == "path" and p["name"] == name for p in operation.get("parameters", ()))
        ]
        for name in {name for produced in LINKS.values() for name in produced}
    }
    for producer, produced in LINKS.items():
        operation = operations[producer]  # a KeyError here: LINKS names an operation that is gone
        links = {
            consumer: {"operationId": consumer, "parameters": {name: expression}}
            for name, expression in produced.items()
            for consumer in takes[name]
            if consumer != producer
        }
        for status, response in operation["responses"].items():
            if str(status).startswith("2"):
                response.setdefault("links", {}).update(links)


def _document_error_responses(schema) -> None:
    """Declare the 4xx answers in each operation, so that clients (and the fuzzer in
    tests/security/test_api_fuzz.py) know an error is documented JSON, not a surprise."""
    schema.setdefault("components", {}).setdefault("schemas", {})["ApiError"] = API_ERROR_SCHEMA
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}}
    for operations in schema["paths"].values():
        for operation in operations.values():
            errors = {}
            if operation.get("requestBody"):
                errors["400"] = "The body is not valid JSON."
            if operation.get("security"):
                errors["401"] = "No valid bearer token or session."
            if any(parameter["in"] == "path" for parameter in operation.get("parameters", ())):
                errors["404"] = "No such object, or not one the caller may see."
            if operation.get("parameters") or operation.get("requestBody"):
                errors["422"] = "The input is invalid; `fields` says where."
            errors["4XX"] = "Refused by a rule (forbidden, conflict, rate limit ...): see `error`."
            errors["503"] = "Database briefly unreachable (`service_unavailable`): retry after Retry-After."
            for status, description in errors.items():
                operation["responses"].setdefault(status, {"description": description, **body})


api = MarketplaceApi(
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
    response = error_response(request, exc.status, exc.code, exc.detail, **exc.extra)
    for header, value in getattr(exc, "headers", {}).items():  # Retry-After on a 429
        response[header] = value
    return response


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


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def on_database_unavailable(request, exc):
    # Whatever the operation (a send, a read, the bearer token's lookup): 503, never a 500. The
    # client retries; a send with the same client_id, so that it is stored once either way.
    logger.warning("503 for %s: database unavailable: %s", request.path, exc)
    response = error_response(request, 503, "service_unavailable", UNAVAILABLE_DETAIL)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


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
