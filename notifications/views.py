"""Notification pages: the bell's dropdown, the full list, settings, Web Push, unsubscribe.
Each view parses input, calls one service or selector, and renders."""

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.core import signing
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from marketplace.accounts.models import User
from marketplace.errors import InvalidInput, NotFound

from . import selectors, services
from .emails import read_unsubscribe_token
from .models import Channel, Kind

BELL_SIZE = 8  # the latest notifications the dropdown shows
PAGE_SIZE = 20  # the full list, per "Load more"
MAX_ROW_ID = 2**63 - 1  # a BigAutoField: larger ids cannot name a row


def _safe_url(request, url: str) -> str | None:
    """`url` when it points to this site, else None."""
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return None


def _next_url(request) -> str:
    return _safe_url(request, request.POST.get("next", "")) or reverse("notifications:index")


def _wants_json(request) -> bool:
    """The page's script asks for JSON; a plain form post gets a redirect and a message."""
    return "application/json" in request.headers.get("Accept", "")


def _mark_read_or_404(user, notification_id: int):
    if notification_id > MAX_ROW_ID:
        raise Http404("Notification not found")
    try:
        return services.mark_read(user=user, notification_id=notification_id)
    except NotFound:
        raise Http404("Notification not found") from None


# --- the bell and the list -----------------------------------------------------------------------


@login_required
@require_GET
def bell(request):
    """The bell's dropdown: the latest notifications and the unread count (an HTML fragment the
    header's script fetches when it opens, and again when a notification event arrives)."""
    page = selectors.notifications_page(user=request.user, limit=BELL_SIZE)
    context = {"items": page.items, "unread_count": selectors.unread_count(user=request.user)}
    response = render(request, "notifications/_bell_items.html", context)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def index(request):
    """Every notification, newest first; ?cursor= for the next page. The page's script asks for
    the next rows only (HX-Request) and appends them as the list scrolls."""
    cursor = request.GET.get("cursor") or None
    error = None
    try:
        page = selectors.notifications_page(user=request.user, cursor=cursor, limit=PAGE_SIZE)
    except InvalidInput as exc:
        page, error = selectors.notifications_page(user=request.user, limit=PAGE_SIZE), exc
    if request.htmx and error is None:
        response = render(request, "notifications/_rows.html", {"page": page})
    else:
        context = {
            "page": page,
            "cursor": cursor if error is None else None,
            "unread_count": selectors.unread_count(user=request.user),
            "error": error.detail if error else "",
        }
        response = render(request, "notifications/index.html", context, status=400 if error else 200)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_POST
def open_notification(request, notification_id: int):
    """A notification clicked: it is read now, and the user goes where it points."""
    notification = _mark_read_or_404(request.user, notification_id)
    return HttpResponseRedirect(_safe_url(request, notification.url) or reverse("notifications:index"))


@login_required
@require_POST
def mark_read(request, notification_id: int):
    _mark_read_or_404(request.user, notification_id)
    if _wants_json(request):
        return JsonResponse(
            {"detail": "Marked as read.", "unread_count": selectors.unread_count(user=request.user)}
        )
    return HttpResponseRedirect(_next_url(request))


@login_required
@require_POST
def mark_all_read(request):
    count = services.mark_all_read(user=request.user)
    done = "All notifications are read." if count else "Nothing was unread."
    if _wants_json(request):
        return JsonResponse({"detail": done, "unread_count": selectors.unread_count(user=request.user)})
    messages.success(request, done)
    return HttpResponseRedirect(_next_url(request))


# --- settings ------------------------------------------------------------------------------------


def _parse_preferences(post) -> dict:
    """The settings form: each cell "<kind>.<channel>" is sent as "0" (a hidden field) and, when
    ticked, "1" after it; the last value wins. Unknown kinds and channels are passed on for the
    service to refuse."""
    changes: dict = {}
    for name in post:
        if name == "csrfmiddlewaretoken":
            continue
        kind, dot, channel = name.partition(".")
        value = post.getlist(name)[-1]
        if not dot or value not in ("0", "1"):
            raise InvalidInput(f"Unknown setting {name!r}.", code="invalid_preference")
        changes.setdefault(kind, {})[channel] = value == "1"
    return changes


@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request):
    """One row per kind of notification, one column per channel; saved all at once."""
    error = None
    if request.method == "POST":
        try:
            services.set_preferences(user=request.user, changes=_parse_preferences(request.POST))
        except InvalidInput as exc:
            error = exc
        else:
            messages.success(request, "Your notification settings are saved.")
            return redirect("notifications:settings")
    matrix = selectors.preferences(user=request.user)
    channels = [{"value": value, "label": label} for value, label in Channel.choices]
    rows = [
        {
            "kind": kind,
            "label": label,
            "cells": [
                {
                    "name": f"{kind}.{channel['value']}",
                    "channel": channel,
                    "enabled": matrix[kind][channel["value"]],
                }
                for channel in channels
            ],
        }
        for kind, label in Kind.choices
    ]
    context = {
        "rows": rows,
        "channels": channels,
        "push_channel": Channel.PUSH.value,
        "vapid_public_key": settings.WEBPUSH_VAPID_PUBLIC_KEY,
        "error": error.detail if error else "",
    }
    return render(request, "notifications/settings.html", context, status=400 if error else 200)


# --- Web Push ------------------------------------------------------------------------------------


def _subscription_fields(request) -> dict:
    """{endpoint, p256dh, auth} from the browser's PushSubscription.toJSON() (a JSON body), or
    from form fields of the same names."""
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"null")
        except (ValueError, RecursionError):
            raise InvalidInput("Send the subscription as JSON.", code="invalid_subscription") from None
        if not isinstance(data, dict):
            raise InvalidInput("Send the subscription as a JSON object.", code="invalid_subscription")
        keys = data.get("keys") if isinstance(data.get("keys"), dict) else {}
        fields = {"endpoint": data.get("endpoint"), "p256dh": keys.get("p256dh"), "auth": keys.get("auth")}
    else:
        fields = {name: request.POST.get(name) for name in ("endpoint", "p256dh", "auth")}
    if not isinstance(fields["endpoint"], str):
        raise InvalidInput("A push subscription's endpoint is an https URL.", code="invalid_subscription")
    return fields


@login_required
@require_POST
def push_subscribe(request):
    """This browser subscribed to Web Push (the settings page's "Enable push" button)."""
    try:
        services.add_push_subscription(user=request.user, **_subscription_fields(request))
    except InvalidInput as exc:
        return JsonResponse({"error": exc.code, "detail": exc.detail}, status=400)
    return JsonResponse({"detail": "Push notifications are on in this browser."}, status=201)


@login_required
@require_POST
def push_unsubscribe(request):
    endpoint = request.POST.get("endpoint")
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"null")
        except (ValueError, RecursionError):
            data = None
        endpoint = data.get("endpoint") if isinstance(data, dict) else None
    if not isinstance(endpoint, str) or not endpoint:
        return JsonResponse({"error": "invalid_subscription", "detail": "Send the endpoint."}, status=400)
    services.remove_push_subscription(user=request.user, endpoint=endpoint)
    return JsonResponse({"detail": "Push notifications are off in this browser."})


@require_GET
def service_worker(request):
    """The push service worker, served from here so that its scope may be the whole site."""
    path = finders.find("notifications/sw.js")
    if not path:
        raise Http404("No service worker")
    with open(path, encoding="utf-8") as source:
        response = HttpResponse(source.read(), content_type="application/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = "/"
    response["Cache-Control"] = "no-cache"
    return response


# --- unsubscribe (the link in every email) --------------------------------------------------------


@require_http_methods(["GET", "POST"])
def unsubscribe(request, token):
    """The link in every notification email: GET asks, POST stops that kind of email (no login
    needed: the signed token names the user and the kind)."""
    try:
        data = read_unsubscribe_token(token)
        user = User.objects.get(pk=data["user"])
        kind = Kind(data["kind"])
    except (signing.BadSignature, User.DoesNotExist, KeyError, TypeError, ValueError):
        return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=400)
    done = request.method == "POST"
    if done:
        services.unsubscribe(user=user, kind=kind)
    return render(request, "notifications/unsubscribe.html", {"kind": kind, "done": done, "token": token})
