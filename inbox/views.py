"""Inbox pages. Each view parses input, calls one service or selector, and renders."""

import uuid
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from attachments.views import upload_context
from marketplace.accounts.selectors import public_profile
from marketplace.accounts.services import update_inbox_preferences
from marketplace.errors import DomainError, InvalidInput, NotFound
from moderation import services as moderation_services
from moderation.models import Report
from orders import selectors as orders_selectors

from . import selectors, services
from .payloads import membership_state
from .search import search_messages


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


def _parse_row_id(raw) -> int | None:
    """An id a row could have (1..2**63-1), or None: larger numbers overflow SQLite."""
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return None
    return value if 0 < value <= selectors.MAX_ROW_ID else None


def _wants_json(request) -> bool:
    """The page's script asks for JSON; a plain form post gets a redirect and a message."""
    return "application/json" in request.headers.get("Accept", "")


def _next_url(request, fallback: str) -> str:
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return fallback


def _page_result(request, *, fallback: str, error: DomainError | None = None, done: str = "", **data):
    """How a page action answers: JSON for the page's script ({"error", "detail"} and a 4xx on a
    refusal), else back to the page with the outcome as a message."""
    if _wants_json(request):
        if error is not None:
            return _error_json(error)
        return JsonResponse({"detail": done, **data})
    if error is not None:
        messages.error(request, error.detail)
    elif done:
        messages.success(request, done)
    return HttpResponseRedirect(_next_url(request, fallback))


# --- a hint shown once above a thread ----------------------------------------------------------

THREAD_HINT_SESSION_KEY = "inbox_thread_hint"


def remember_thread_hint(
    request, *, conversation_id: int, title: str, reasons: list[str], links: list[dict], links_title: str = ""
) -> None:
    """Show a hint above the conversation's thread the next time this user opens it (once): e.g.
    why a request may not fit the seller, and sellers whose gigs do. `links`: {url, text, detail}."""
    request.session[THREAD_HINT_SESSION_KEY] = {
        "conversation_id": conversation_id,
        "title": title,
        "reasons": list(reasons),
        "links": list(links),
        "links_title": links_title,
    }


def _pop_thread_hint(request, conversation_id: int) -> dict | None:
    hint = request.session.get(THREAD_HINT_SESSION_KEY)
    if not isinstance(hint, dict) or hint.get("conversation_id") != conversation_id:
        return None
    del request.session[THREAD_HINT_SESSION_KEY]
    return hint


# --- the list pane: filters with counts, labels, a name search, "Load more" -------------------

LIST_PAGE_SIZE = 50
MAX_LIST_PAGES = 10  # how many pages a live refresh re-reads (the user clicked "Load more")


def _list_params(request) -> dict:
    """The list's state from the query string: ?filter=<name> or ?label=<id>, and ?q=<name>."""
    label = request.GET.get("label") or None
    return {
        "filter_name": "all" if label else (request.GET.get("filter") or "all"),
        "label_id": label,
        "query": request.GET.get("q", ""),
    }


def _list_values(params: dict) -> dict:
    """The list's state as query-string values, defaults left out."""
    values = {}
    if params["label_id"]:
        values["label"] = params["label_id"]
    elif params["filter_name"] != "all":
        values["filter"] = params["filter_name"]
    if params["query"]:
        values["q"] = params["query"]
    return values


def _with_query(path: str, values: dict) -> str:
    return f"{path}?{urlencode(values)}" if values else path


def _page_path(active_id) -> str:
    return reverse("inbox:conversation", args=[active_id]) if active_id else reverse("inbox:index")


def _read_list(user, params: dict, *, cursor, pages: int):
    """`pages` inbox pages from `cursor` (a live refresh re-reads what "Load more" showed)."""
    items, next_cursor = [], cursor
    for _ in range(pages):
        page = selectors.inbox_page(user=user, **params, cursor=next_cursor, limit=LIST_PAGE_SIZE)
        items.extend(page.items)
        next_cursor = page.next_cursor
        if next_cursor is None:
            break
    return selectors.Page(items=items, next_cursor=next_cursor)


def _list_context(request, *, active_id=None, cursor=None, pages=1, page_number=1) -> dict:
    """Everything the list pane shows: the conversations, the filters with counts, the labels."""
    user = request.user
    params = _list_params(request)
    values = _list_values(params)
    page_path = _page_path(active_id)
    labels = selectors.labels_for_user(user=user)
    counts = selectors.filter_counts(user=user)
    try:
        conversations, error = _read_list(user, params, cursor=cursor, pages=pages), None
    except DomainError as exc:
        conversations, error = selectors.Page(items=[], next_cursor=None), exc
    by_id = {label.pk: label for label in labels}
    for membership in conversations.items:
        membership.row_labels = [by_id[i] for i in membership.label_ids if i in by_id]

    search = {"q": params["query"]} if params["query"] else {}
    current_label = by_id.get(_parse_row_id(params["label_id"])) if params["label_id"] else None
    filter_items = [
        {
            "key": key,
            "name": name,
            "count": counts[key],
            "url": _with_query(page_path, {**({"filter": key} if key != "all" else {}), **search}),
            "current": not params["label_id"] and params["filter_name"] == key,
        }
        for key, name in selectors.FILTERS.items()
    ]
    label_items = [
        {
            "key": f"label-{label.pk}",
            "name": label.name,
            "color": label.color,
            "count": counts["labels"].get(label.pk, 0),
            "url": _with_query(page_path, {"label": label.pk, **search}),
            "current": label == current_label,
        }
        for label in labels
        if not label.is_shared
    ]
    current = next((item for item in filter_items + label_items if item["current"]), None)
    more = {**values, "cursor": conversations.next_cursor or "", "page": page_number + 1}
    if active_id:
        more["active"] = active_id
    return {
        "conversations": conversations,
        "list_error": error.detail if error else "",
        "list_status": error.status if error else 200,
        "labels": labels,
        "filter_items": filter_items,
        "label_items": label_items,
        "current_filter_key": params["filter_name"],
        "current_label_id": current_label.pk if current_label else None,
        "current_filter_name": current["name"] if current else "Conversations",
        "current_filter_count": current["count"] if current else len(conversations.items),
        "current_filter_color": current.get("color") if current else None,
        "query": params["query"],
        "list_query": urlencode(values),
        "list_page_path": page_path,
        "clear_query_url": _with_query(page_path, {k: v for k, v in values.items() if k != "q"}),
        "more_url": _with_query(reverse("inbox:conversation-list"), more),
        "active_id": active_id,
        "page_number": page_number,
    }


@login_required
@require_GET
def inbox(request, conversation_id=None):
    user = request.user
    active = (
        _membership_or_404(request, conversation_id, details=True) if conversation_id is not None else None
    )
    services.follow_up_label()  # the label everyone has (made once)
    context = {
        **_list_context(request, active_id=conversation_id),
        "active": active,
        "report_reasons": Report.Reason.choices,
        "event_cursor": selectors.head_cursor(user_id=user.pk),
        "enter_sends": user.profile.enter_sends,
    }
    if active is not None:
        selectors.attach_label_ids([active])
        by_id = {label.pk: label for label in context["labels"]}
        context.update(
            active_labels=[by_id[i] for i in active.label_ids if i in by_id],
            blocked=selectors.has_blocked(user=user, other_user_id=active.other_user_id),
        )
        thread, highlighted = _thread_for_page(active, around=_parse_message_id(request.GET.get("message")))
        context.update(
            thread_messages=list(reversed(thread.items)),
            earlier_cursor=thread.next_cursor,
            highlighted_message_id=highlighted,
            newer_cursor=thread.newer_cursor,
            other_last_read_message_id=selectors.other_last_read_message_id(membership=active),
            thread_hint=_pop_thread_hint(request, active.conversation_id),
            **_orders_context(user, active.other_user),
            **_quick_responses_context(user, active),
            **upload_context(active.conversation_id),
        )
    return render(request, "inbox/inbox.html", context, status=context["list_status"])


@login_required
@require_GET
def order_history(request, conversation_id):
    """The panel's order history between the two (what a live page re-fetches)."""
    membership = _membership_or_404(request, conversation_id, details=True)
    orders = orders_selectors.orders_between(user=request.user, other_user=membership.other_user)
    return render(request, "inbox/_order_history.html", {"orders_history": orders})


def _quick_responses_context(user, membership) -> dict:
    """A seller's quick responses for the composer's picker, filled for this conversation
    (None for buyers: no picker)."""
    if not user.profile.is_seller:
        return {"quick_responses": None}
    filled = selectors.quick_responses_for_conversation(user=user, membership=membership)
    return {
        "quick_responses": filled,
        "quick_responses_data": [{"id": q.id, "title": q.title, "text": q.text} for q in filled],
    }


def _orders_context(user, other) -> dict:
    """What the conversation page shows about the other person and orders (a fixed number of
    queries): the panel (presence, order history, Top buyer standing, response figures), and a
    seller's own gigs for the "Create an offer" form."""
    panel = selectors.other_person_panel(user=user, other=other)
    return {
        "other_online": panel.online,
        "orders_history": panel.orders,
        "other_standing": panel.standing,
        "other_figures": panel.figures,
        "other_away": panel.away,
        "my_gigs": orders_selectors.gigs_of_seller(seller=user) if user.profile.is_seller else [],
        "offer_form": {"values": {"expires_in_days": "7"}, "errors": {}},
        "consultation_form": {"values": {"duration_minutes": "30"}, "errors": {}},
        "consultation_durations": (15, 30, 45, 60, 90, 120),
    }


@login_required
@require_GET
def conversation_list(request):
    """The list pane's filters and conversations, re-fetched by the page when an event changes
    them (`pages`: as many pages as it shows), or with `cursor` only the next rows ("Load more")."""
    active_id = _parse_row_id(request.GET.get("active"))
    cursor = request.GET.get("cursor") or None
    if cursor:
        page_number = min(_parse_row_id(request.GET.get("page")) or 2, 10_000)
        context = _list_context(request, active_id=active_id, cursor=cursor, page_number=page_number)
        return render(request, "inbox/_conversation_rows.html", context, status=context["list_status"])
    pages = min(_parse_row_id(request.GET.get("pages")) or 1, MAX_LIST_PAGES)
    context = _list_context(request, active_id=active_id, pages=pages)
    response = render(request, "inbox/_list_pane.html", context, status=context["list_status"])
    if request.htmx:
        # The name search narrows the list as one types: the address bar follows.
        response["HX-Replace-Url"] = _with_query(
            context["list_page_path"], _list_values(_list_params(request))
        )
    return response


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
    raw_reply_to = request.POST.get("reply_to") or None
    client_id = _parse_client_id(request.POST.get("client_id"))
    try:
        message, _created = services.send_message(
            sender=request.user,
            conversation=membership.conversation,
            body=request.POST.get("body", ""),
            client_id=client_id,
            # An id no message can have is refused by the service like any foreign one.
            reply_to_id=(_parse_row_id(raw_reply_to) or 0) if raw_reply_to else None,
            # Ids no upload can have are refused by the service like anyone else's.
            attachment_ids=[_parse_row_id(raw) or 0 for raw in request.POST.getlist("attachments")[:50]],
            rate_limited=True,
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
        client_id = _parse_client_id(request.POST.get("client_id"))
        try:
            conversation, _message, _created = services.start_conversation(
                sender=request.user,
                recipient_username=recipient.username,
                body=body,
                client_id=client_id,
                rate_limited=True,
            )
        except DomainError as exc:
            context.update(
                body=body, error=exc.detail, client_id=request.POST.get("client_id") or uuid.uuid4()
            )
            return render(request, "inbox/new_conversation.html", context, status=exc.status)
        return redirect("inbox:conversation", conversation_id=conversation.pk)
    return render(request, "inbox/new_conversation.html", context)


# --- filing: actions on one or many conversations, blocking ----------------------------------

ACTIONS_DONE = {
    "star": "Starred",
    "unstar": "Unstarred",
    "mark_read": "Marked as read",
    "mark_unread": "Marked as unread",
    "archive": "Archived",
    "unarchive": "Moved back to the inbox",
    "delete": "Deleted from your inbox (search their name to find it again)",
    "report_spam": "Reported as spam",
    "not_spam": "Moved out of Spam",
    "add_label": "Label “{label}” applied",
    "remove_label": "Label “{label}” removed",
}


@login_required
@require_POST
def file_conversations(request):
    """The Actions menu of a conversation and the bar over the selected rows: one action on one
    or many of the user's conversations (all or none; any id not theirs is a 404)."""
    action = request.POST.get("action", "")
    raw_ids = request.POST.getlist("conversation_ids")
    conversation_ids = [_parse_row_id(raw) for raw in raw_ids]
    if None in conversation_ids:
        raise Http404("Conversation not found")
    fallback = reverse("inbox:index")
    try:
        label = None
        if action in ("add_label", "remove_label"):
            label_id = request.POST.get("label_id")
            if not label_id:
                raise InvalidInput("Say which label.", code="label_required")
            label = selectors.label_for_user(user=request.user, label_id=label_id)
        memberships = services.file_conversations(
            user=request.user, conversation_ids=conversation_ids, action=action, label=label
        )
    except NotFound:
        raise Http404("Conversation not found") from None
    except DomainError as exc:
        return _page_result(request, fallback=fallback, error=exc)
    selectors.attach_label_ids(memberships)
    done = ACTIONS_DONE[action].format(label=label.name if label else "")
    if len(memberships) > 1:
        done += f" ({len(memberships)} conversations)"
    return _page_result(
        request,
        fallback=fallback,
        done=done + ".",
        conversations=[membership_state(m, label_ids=m.label_ids) for m in memberships],
    )


@login_required
@require_POST
def block(request, conversation_id):
    """Block the other person of a conversation (the service says when that is not allowed)."""
    membership = _membership_or_404(request, conversation_id, details=True)
    other = membership.other_user
    try:
        services.block_user(blocker=request.user, blocked=other)
    except DomainError as exc:
        return _page_result(request, fallback=_page_path(conversation_id), error=exc)
    return _page_result(
        request,
        fallback=_page_path(conversation_id),
        done=f"You blocked {other.profile.display_name}: their messages are refused.",
    )


@login_required
@require_POST
def unblock(request, conversation_id):
    membership = _membership_or_404(request, conversation_id, details=True)
    other = membership.other_user
    services.unblock_user(blocker=request.user, blocked=other)
    return _page_result(
        request, fallback=_page_path(conversation_id), done=f"You unblocked {other.profile.display_name}."
    )


# --- reports: a conversation, or a message of the other person, to the moderators -------------

REPORT_DONE = "Thanks: your report was sent to the moderators."


def _reported_message(request, membership, raw_id):
    """The message a report is about (one of the conversation's, as this user sees it), or None."""
    if not raw_id:
        return None
    try:
        message = selectors.message_for_user(user=request.user, message_id=_parse_row_id(raw_id) or 0)
    except NotFound:
        raise Http404("Message not found") from None
    if message.conversation_id != membership.conversation_id:
        raise Http404("Message not found")
    return message


def _report_page(request, membership, *, message, values, error="", status=200):
    context = {
        "active": membership,
        "reported_message": message,
        "report_reasons": Report.Reason.choices,
        "values": values,
        "error": error,
        "next": _next_url(request, _page_path(membership.conversation_id)),
    }
    return render(request, "inbox/report.html", context, status=status)


@login_required
def report(request, conversation_id):
    """Report the conversation, or one message of the other person in it (?message=<id>):
    a reason and a note. Reporting spam also moves the conversation to Spam."""
    membership = _membership_or_404(request, conversation_id, details=True)
    if request.method != "POST":
        message = _reported_message(request, membership, request.GET.get("message"))
        return _report_page(request, membership, message=message, values={"reason": "", "note": ""})
    message = _reported_message(request, membership, request.POST.get("message_id"))
    values = {"reason": request.POST.get("reason", ""), "note": request.POST.get("note", "")}
    fallback = _page_path(membership.conversation_id)
    try:
        moderation_services.report(
            reporter=request.user,
            conversation=membership.conversation,
            reason=values["reason"],
            note=values["note"],
            message=message,
        )
    except NotFound:
        raise Http404("Conversation not found") from None
    except DomainError as exc:
        if _wants_json(request):
            return _error_json(exc)
        return _report_page(
            request, membership, message=message, values=values, error=exc.detail, status=exc.status
        )
    done = REPORT_DONE
    if values["reason"] == Report.Reason.SPAM:
        done += " The conversation moved to Spam."
    membership.refresh_from_db()
    selectors.attach_label_ids([membership])
    return _page_result(
        request,
        fallback=fallback,
        done=done,
        conversations=[membership_state(membership, label_ids=membership.label_ids)],
    )


# --- the composer: drafts and the Enter key ------------------------------------------------------


@login_required
@require_POST
def save_draft(request, conversation_id):
    """What the user typed and has not sent, kept for their other devices."""
    membership = _membership_or_404(request, conversation_id)
    try:
        services.save_draft(
            user=request.user, conversation=membership.conversation, text=request.POST.get("text", "")
        )
    except DomainError as exc:
        return _error_json(exc)
    return HttpResponse(status=204)


ENTER_CHOICES = {"1": True, "true": True, "on": True, "0": False, "false": False, "off": False}


@login_required
@require_POST
def preferences(request):
    """Whether Enter sends or adds a new line in the composer, remembered per user."""
    enter_sends = ENTER_CHOICES.get(request.POST.get("enter_sends", "").lower())
    fallback = reverse("inbox:index")
    try:
        if enter_sends is None:
            raise InvalidInput(
                "Choose whether Enter sends (1) or adds a new line (0).", code="invalid_preference"
            )
        profile = update_inbox_preferences(user=request.user, enter_sends=enter_sends)
    except DomainError as exc:
        return _page_result(request, fallback=fallback, error=exc)
    if profile.enter_sends:
        done = "Enter now sends; Shift+Enter adds a new line."
    else:
        done = "Enter now adds a new line; Shift+Enter sends."
    return _page_result(request, fallback=fallback, done=done, enter_sends=profile.enter_sends)


# --- labels ---------------------------------------------------------------------------------------

LABEL_ERROR_FIELDS = {"invalid_color": "color"}  # every other refusal is about the name


def _labels_page(request, *, create=None, failed=None, status=200):
    """The labels page; `create` / `failed` hold what was typed and the service's refusal."""
    services.follow_up_label()
    labels = selectors.labels_for_user(user=request.user)
    for label in labels:
        label.form_name, label.form_color, label.form_errors = label.name, label.color, {}
        if failed and failed["label_id"] == label.pk:
            label.form_name, label.form_color = failed["name"], failed["color"]
            label.form_errors = failed["errors"]
    context = {
        "labels": labels,
        # A refusal about a label that has no form (Follow-up) is shown above the list.
        "labels_error": failed["errors"]["name"] if failed and failed["shared"] else "",
        "own_labels_count": sum(1 for label in labels if not label.is_shared),
        "create": create or {"name": "", "color": "", "errors": {}},
        "max_label_name": services.filing.MAX_LABEL_NAME,
    }
    return render(request, "inbox/labels.html", context, status=status)


def _label_or_404(request, label_id):
    try:
        return selectors.label_for_user(user=request.user, label_id=label_id)
    except NotFound:
        raise Http404("Label not found") from None


def _field_errors(exc: DomainError) -> dict:
    return {LABEL_ERROR_FIELDS.get(exc.code, "name"): exc.detail}


@login_required
def labels(request):
    """Your labels: create, rename, recolour, delete. Follow-up is everyone's and stays as it is."""
    if request.method != "POST":
        return _labels_page(request)
    name, color = request.POST.get("name", ""), request.POST.get("color") or None
    try:
        label = services.create_label(user=request.user, name=name, color=color)
    except DomainError as exc:
        typed = {"name": name, "color": color or "", "errors": _field_errors(exc)}
        return _labels_page(request, create=typed, status=exc.status)
    messages.success(request, f"Label “{label.name}” created.")
    return redirect("inbox:labels")


@login_required
@require_POST
def label_update(request, label_id):
    label = _label_or_404(request, label_id)
    name, color = request.POST.get("name"), request.POST.get("color") or None
    try:
        label = services.update_label(user=request.user, label=label, name=name, color=color)
    except DomainError as exc:
        failed = {
            "label_id": label.pk,
            "shared": label.is_shared,
            "name": name or "",
            "color": color or "",
            "errors": _field_errors(exc),
        }
        return _labels_page(request, failed=failed, status=exc.status)
    messages.success(request, f"Label “{label.name}” saved.")
    return redirect("inbox:labels")


@login_required
@require_POST
def label_delete(request, label_id):
    label = _label_or_404(request, label_id)
    try:
        services.delete_label(user=request.user, label=label)
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("inbox:labels")
    messages.success(request, f"Label “{label.name}” deleted; the conversations keep everything else.")
    return redirect("inbox:labels")


# --- one message: show, edit, delete -----------------------------------------------------------


def _message_or_404(request, message_id):
    try:
        return selectors.message_for_user(user=request.user, message_id=message_id)
    except NotFound:
        raise Http404("Message not found") from None


def _render_message(request, message_id):
    """One message as the thread shows it (what a live page puts in place of the old one)."""
    message = _message_or_404(request, message_id)
    membership = _membership_or_404(request, message.conversation_id, details=True)
    return render(request, "inbox/_message.html", {"message": message, "active": membership})


@login_required
@require_GET
def message_fragment(request, message_id):
    return _render_message(request, message_id)


@login_required
@require_POST
def edit_message(request, message_id):
    """Change your message's text within the edit window; answers the message re-rendered."""
    message = _message_or_404(request, message_id)
    try:
        services.edit_message(user=request.user, message=message, body=request.POST.get("body", ""))
    except DomainError as exc:
        return _error_json(exc)
    return _render_message(request, message_id)


@login_required
@require_POST
def delete_message(request, message_id):
    """Delete your message within the edit window: its place shows a placeholder."""
    message = _message_or_404(request, message_id)
    try:
        services.delete_message(user=request.user, message=message)
    except DomainError as exc:
        return _error_json(exc)
    return _render_message(request, message_id)


# --- search ---------------------------------------------------------------------------------


def _thread_for_page(membership, *, around: int | None):
    """The conversation page's messages: around `?message=<id>` (a search result opened) when
    that message is in the conversation, else the newest ones. Returns (page, highlighted id)."""
    if around is not None:
        try:
            return selectors.thread_page(membership=membership, around=around, limit=50), around
        except NotFound:
            pass  # not a message of this conversation: open the conversation as usual
    return selectors.thread_page(membership=membership, limit=50), None


@login_required
@require_GET
def message_search(request):
    """Full-text search over the user's messages; each hit opens its conversation at the message."""
    query = request.GET.get("q", "")
    context = {"query": query, "page": None, "error": None}
    if query.strip():
        try:
            context["page"] = search_messages(
                user=request.user, query=query, cursor=request.GET.get("cursor") or None
            )
        except DomainError as exc:
            context["error"] = exc.detail
            return render(request, "inbox/search.html", context, status=exc.status)
    return render(request, "inbox/search.html", context)


# --- translation ----------------------------------------------------------------------------


@login_required
@require_POST
def translate_message(request, message_id):
    """The "Translate" action on a received message: an HTML fragment to show beside the
    original (on a refusal, the same fragment with the reason and the error's status)."""
    try:
        message = selectors.message_for_user(user=request.user, message_id=message_id)
    except NotFound:
        raise Http404("Message not found") from None
    try:
        translation = services.translate_message(
            user=request.user,
            message=message,
            target_language=request.POST.get("target_language") or None,
        )
    except DomainError as exc:
        context = {"error": exc.detail, "error_code": exc.code, "message_id": message.pk}
        return render(request, "inbox/_translation.html", context, status=exc.status)
    return render(request, "inbox/_translation.html", {"translation": translation})
