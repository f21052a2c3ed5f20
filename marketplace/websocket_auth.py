"""Who may open a websocket.

Browsers authenticate with their session cookie, so the Origin must be one of ALLOWED_HOSTS:
that check is the only CSRF defence a websocket has. Other clients send
`Authorization: Bearer <token>`; a client that sends no Origin must use a token, never a cookie.
"""

from urllib.parse import urlsplit

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host

from marketplace.accounts.services import user_for_api_token


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _bearer_token(scope) -> str | None:
    authorization = _header(scope, b"authorization")
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def origin_allowed(origin: str) -> bool:
    parsed = urlsplit(origin)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return False
    if parsed.scheme != "https" and settings.SECURE_SSL_REDIRECT:
        return False  # the site is HTTPS only: a plain-http page claiming it is not the site
    host, _port = split_domain_port(parsed.netloc)
    return validate_host(host, settings.ALLOWED_HOSTS)


class OriginCheckMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            origin = _header(scope, b"origin")
            allowed = origin_allowed(origin) if origin is not None else _bearer_token(scope) is not None
            if not allowed:
                return await WebsocketDenier()(scope, receive, send)
        return await self.app(scope, receive, send)


class BearerTokenMiddleware:
    """A handshake with a bearer token is the token's user (a bad token means anonymous, never a
    fallback to the cookie); one without is the session cookie's user (AuthMiddlewareStack).
    A token handshake skips the session lookup: one trip to the sync thread, not two, which is
    what a connect storm waits on (docs/PERFORMANCE.md)."""

    def __init__(self, app):
        self.app = app
        self.session_app = AuthMiddlewareStack(app)

    async def __call__(self, scope, receive, send):
        token = _bearer_token(scope)
        if token is None:
            return await self.session_app(scope, receive, send)
        user = await database_sync_to_async(user_for_api_token)(token)
        return await self.app(dict(scope, user=user or AnonymousUser()), receive, send)
