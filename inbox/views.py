"""Inbox pages. Each view parses input, calls one service or selector, and renders."""

import uuid

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from marketplace.accounts.selectors import public_profile
from marketplace.errors import DomainError, NotFound

from . import selectors, services
from .presence import online_user_ids


def _error_json(exc: DomainError) -> JsonResponse:
    return JsonResponse({"error": exc.code, "detail": exc.detail}, status=exc.status)


def _membership_or_404(request, conversation_id, *, details=False):
    try:
        return selectors.conversation_for_user(
            user=request.user, conversation_id=conversation_id, details=details
        )
    except NotFound:
        raise Http404("Conversation not found") from None


def _parse_client_id(raw: str | None) -> uuid.UUID | None:
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def _parse_message_id(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


@login_required
@require_GET
def inbox(request, conversation_id=None):
    user = request.user
    active = (
        _membership_or_404(request, conversation_id, details=True) if conversation_id is not None else None
    )
    context = {
        "conversations": selectors.inbox_page(user=user, limit=50),
        "active": active,
        "event_cursor": selectors.head_cursor(user_id=user.pk),
    }
    if active is not None:
        thread = selectors.thread_page(membership=active, limit=50)
        context.update(
            thread_messages=list(reversed(thread.items)),
            earlier_cursor=thread.next_cursor,
            other_last_read_message_id=selectors.other_last_read_message_id(membership=active),
            other_online=active.other_user_id in online_user_ids([active.other_user_id]),
        )
    return render(request, "inbox/inbox.html", context)


@login_required
@require_GET
def conversation_list(request):
    """The list pane alone, re-fetched by the page when an event changes it."""
    return render(
        request,
        "inbox/_conversation_list.html",
        {
            "conversations": selectors.inbox_page(user=request.user, limit=50),
            "active_id": _parse_message_id(request.GET.get("active")),
        },
    )


@login_required
@require_GET
def thread_messages(request, conversation_id):
    """Messages after `after` (live append, oldest first) or before `before` (load earlier)."""
    membership = _membership_or_404(request, conversation_id)
    after = _parse_message_id(request.GET.get("after"))
    try:
        page = selectors.thread_page(
            membership=membership, after=after, cursor=request.GET.get("before") if after is None else None
        )
    except DomainError as exc:
        return _error_json(exc)
    items = page.items if after is not None else list(reversed(page.items))
    return render(
        request,
        "inbox/_messages.html",
        {"thread_messages": items, "earlier_cursor": page.next_cursor, "active": membership},
    )


@login_required
@require_POST
def send(request, conversation_id):
    """The composer. Answers with every message after `after`, so the page catches up too."""
    membership = _membership_or_404(request, conversation_id)
    try:
        message, _created = services.send_message(
            sender=request.user,
            conversation=membership.conversation,
            body=request.POST.get("body", ""),
            client_id=_parse_client_id(request.POST.get("client_id")),
        )
    except DomainError as exc:
        return _error_json(exc)
    after = _parse_message_id(request.POST.get("after"))
    page = selectors.thread_page(membership=membership, after=after if after is not None else message.pk - 1)
    return render(request, "inbox/_messages.html", {"thread_messages": page.items, "active": membership})


@login_required
@require_POST
def mark_read(request, conversation_id):
    membership = _membership_or_404(request, conversation_id)
    updated = services.mark_read(
        user=request.user,
        conversation=membership.conversation,
        up_to_message_id=_parse_message_id(request.POST.get("up_to_message_id")),
    )
    return JsonResponse(
        {"unread_count": updated.unread_count, "last_read_message_id": updated.last_read_message_id}
    )


@login_required
@require_POST
def typing(request, conversation_id):
    membership = _membership_or_404(request, conversation_id)
    services.announce_typing(user=request.user, conversation=membership.conversation)
    return HttpResponse(status=204)


@login_required
def new_conversation(request):
    """Write to a seller from their profile or gig. Reuses an existing conversation."""
    recipient = public_profile(username=request.GET.get("to") or request.POST.get("to") or "")
    if recipient.pk == request.user.pk:
        return redirect("inbox:index")
    existing = selectors.conversation_between(user=request.user, other_user=recipient)
    if request.method == "GET" and existing is not None:
        return redirect("inbox:conversation", conversation_id=existing.conversation_id)
    context = {"recipient": recipient, "body": request.GET.get("body", ""), "client_id": uuid.uuid4()}
    if request.method == "POST":
        body = request.POST.get("body", "")
        try:
            conversation, _message, _created = services.start_conversation(
                sender=request.user,
                recipient_username=recipient.username,
                body=body,
                client_id=_parse_client_id(request.POST.get("client_id")),
            )
        except DomainError as exc:
            context.update(
                body=body, error=exc.detail, client_id=request.POST.get("client_id") or uuid.uuid4()
            )
            return render(request, "inbox/new_conversation.html", context, status=exc.status)
        return redirect("inbox:conversation", conversation_id=conversation.pk)
    return render(request, "inbox/new_conversation.html", context)
