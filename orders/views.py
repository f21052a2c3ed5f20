"""Pages about gigs, requests, custom offers, calls and orders.

Each view parses input, calls one service or selector, and renders. A refusal is shown beside
the field it is about, with what was typed kept; the page's script asks for JSON and gets
{"error", "detail"} with a 4xx instead.
"""

import json
import uuid
from datetime import date, datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from attachments.views import upload_context
from inbox import selectors as inbox_selectors
from inbox import services as inbox_services
from inbox.presence import online_user_ids
from inbox.views import remember_thread_hint
from marketplace.accounts.selectors import current_away, public_profile
from marketplace.errors import DomainError, InvalidInput, NotFound

from . import selectors, services
from .models import Order, OrderEvent
from .templatetags.order_cards import money

GENERAL = "form"  # an error about the whole form, shown above its button


# --- answering ------------------------------------------------------------------------------


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


def _answer(request, *, fallback: str, error: DomainError | None = None, done: str = "", **data):
    """JSON for the page's script ({"error", "detail"} and a 4xx on a refusal), else back to the
    page with the outcome as a message (a 404 stays a 404)."""
    if _wants_json(request):
        if error is not None:
            return JsonResponse({"error": error.code, "detail": error.detail}, status=error.status)
        return JsonResponse({"detail": done, **data})
    if error is not None:
        if error.status == 404:
            raise Http404(error.detail)
        messages.error(request, error.detail)
    elif done:
        messages.success(request, done)
    return HttpResponseRedirect(_next_url(request, fallback))


def _check_fields(values: dict, checks: dict) -> dict:
    """Run each field's check (the services' own validators): {field: why not} for every field
    that fails, so all of them are shown at once."""
    errors = {}
    for field, check in checks.items():
        try:
            check(values.get(field, ""))
        except DomainError as exc:
            errors[field] = exc.detail
    return errors


def _refusal(exc: DomainError, fields: dict) -> dict:
    """A service's refusal, beside the field its code names (else above the button)."""
    return {fields.get(exc.code, GENERAL): exc.detail}


def _row_id(raw) -> int | None:
    """An id a row could have (1..2**63-1), or None."""
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return None
    return value if 0 < value <= inbox_selectors.MAX_ROW_ID else None


def _int_check(*, low: int, high: int, message: str, code: str):
    def check(value) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise InvalidInput(message, code=code) from None
        if not low <= number <= high:
            raise InvalidInput(message, code=code)
        return number

    return check


# --- gigs -----------------------------------------------------------------------------------

GIG_FIELDS = ("title", "description", "price", "delivery_days", "revisions")
GIG_CHECKS = {
    "title": lambda value: services.clean_text(value, what="The title", max_length=120),
    "description": lambda value: services.clean_text(value, what="The description", max_length=5000),
    "price": services.clean_price,
    "delivery_days": services.clean_delivery_days,
    "revisions": services.clean_revisions,
}
GIG_ERROR_FIELDS = {
    "invalid_price": "price",
    "invalid_delivery_days": "delivery_days",
    "invalid_revisions": "revisions",
}


def home(request):
    return render(request, "orders/home.html", {"gigs": selectors.active_gigs()})


@login_required
@require_GET
def my_gigs(request):
    """A seller's gigs, shown or not, with what each costs and takes."""
    gigs = selectors.gigs_of_seller(seller=request.user, include_inactive=True)
    return render(request, "orders/my_gigs.html", {"gigs": gigs})


def _gig_form(request, *, gig, values, errors, status=200):
    context = {"gig": gig, "values": values, "errors": errors, "limits": _limits()}
    return render(request, "orders/gig_form.html", context, status=status)


def _limits() -> dict:
    return {
        "price_min": services.PRICE_MIN,
        "price_max": services.PRICE_MAX,
        "delivery_days_max": services.DELIVERY_DAYS_MAX,
        "revisions_max": services.REVISIONS_MAX,
        "expiry_days_max": services.OFFER_EXPIRY_DAYS_MAX,
    }


@login_required
@require_http_methods(["GET", "POST"])
def gig_new(request):
    """Publish a gig. Only sellers publish; a buyer is told how to become one."""
    if request.method == "GET":
        values = {"title": "", "description": "", "price": "", "delivery_days": "", "revisions": "1"}
        return _gig_form(request, gig=None, values=values, errors={})
    values = {field: request.POST.get(field, "") for field in GIG_FIELDS}
    errors = _check_fields(values, GIG_CHECKS)
    if errors:
        return _gig_form(request, gig=None, values=values, errors=errors, status=422)
    try:
        gig = services.create_gig(seller=request.user, **values)
    except DomainError as exc:
        errors = _refusal(exc, GIG_ERROR_FIELDS)
        return _gig_form(request, gig=None, values=values, errors=errors, status=exc.status)
    messages.success(request, f"“{gig.title}” is published.")
    return redirect("orders:my-gigs")


def _own_gig_or_404(request, gig_id):
    try:
        return selectors.gig_of_seller(seller=request.user, gig_id=gig_id)
    except NotFound:
        raise Http404("Gig not found") from None


@login_required
@require_http_methods(["GET", "POST"])
def gig_edit(request, gig_id):
    gig = _own_gig_or_404(request, gig_id)
    if request.method == "GET":
        values = {field: getattr(gig, field) for field in GIG_FIELDS}
        return _gig_form(request, gig=gig, values=values, errors={})
    values = {field: request.POST.get(field, "") for field in GIG_FIELDS}
    errors = _check_fields(values, GIG_CHECKS)
    if errors:
        return _gig_form(request, gig=gig, values=values, errors=errors, status=422)
    try:
        gig = services.update_gig(seller=request.user, gig=gig, **values)
    except DomainError as exc:
        errors = _refusal(exc, GIG_ERROR_FIELDS)
        return _gig_form(request, gig=gig, values=values, errors=errors, status=exc.status)
    messages.success(request, f"“{gig.title}” is saved.")
    return redirect("orders:my-gigs")


@login_required
@require_POST
def gig_active(request, gig_id):
    """Deactivate a gig (it leaves the home page and the profile) or show it again."""
    gig = _own_gig_or_404(request, gig_id)
    active = request.POST.get("active") == "1"
    gig = services.update_gig(seller=request.user, gig=gig, is_active=active)
    done = f"“{gig.title}” is {'shown again' if active else 'deactivated: buyers no longer see it'}."
    return _answer(request, fallback=reverse("orders:my-gigs"), done=done, is_active=gig.is_active)


# --- requests: a buyer's brief to a seller, from their profile or one of their gigs ----------

REQUEST_FIELDS = ("description", "budget", "deadline")
REQUEST_ERROR_FIELDS = {
    "invalid_text": "description",
    "invalid_price": "budget",
    "invalid_deadline": "deadline",
}


def _parse_deadline(raw) -> date:
    try:
        return date.fromisoformat(str(raw).strip())
    except ValueError:
        raise InvalidInput("The deadline is a date, like 2026-12-24.", code="invalid_deadline") from None


REQUEST_CHECKS = {
    "description": lambda value: services.clean_text(value, what="What you need"),
    "budget": lambda value: services.clean_price(value, what="The budget"),
    "deadline": _parse_deadline,
}


def _empty_request_form() -> dict:
    return {"values": {"description": "", "budget": "", "deadline": ""}, "errors": {}}


def _with_limits(form: dict) -> dict:
    """A request form with the dates a deadline can take (tomorrow to a year out)."""
    today = timezone.localdate()
    return {
        **form,
        "min_deadline": date.fromordinal(today.toordinal() + 1).isoformat(),
        "max_deadline": date.fromordinal(today.toordinal() + services.DELIVERY_DAYS_MAX).isoformat(),
    }


def _send_request(request, seller):
    """A request posted from a seller's page: (redirect to the conversation, None) when sent,
    else (None, the form with its errors and what was typed, status)."""
    values = {field: request.POST.get(field, "") for field in REQUEST_FIELDS}
    errors = _check_fields(values, REQUEST_CHECKS)
    if errors:
        return None, {"values": values, "errors": errors}, 422
    try:
        sent = services.send_request(
            buyer=request.user,
            seller=seller,
            description=values["description"],
            budget=values["budget"],
            deadline=_parse_deadline(values["deadline"]),
        )
    except DomainError as exc:
        return None, {"values": values, "errors": _refusal(exc, REQUEST_ERROR_FIELDS)}, exc.status
    name = seller.profile.display_name
    reasons = selectors.request_mismatches(seller=seller, budget=sent.budget, deadline=sent.deadline)
    if reasons:
        fits = selectors.sellers_that_fit(
            budget=sent.budget, deadline=sent.deadline, exclude_seller=seller, buyer=request.user
        )
        remember_thread_hint(
            request,
            conversation_id=sent.conversation_id,
            title=f"Your request may not fit {name}",
            reasons=reasons,
            links=[
                {
                    "url": reverse("orders:gig", args=[gig.pk]),
                    "text": gig.title,
                    "detail": f"by {gig.seller.profile.display_name} · {money(gig.price)} · "
                    f"{gig.delivery_days}-day delivery",
                }
                for gig in fits
            ],
            links_title="Sellers whose gigs fit your budget and deadline",
        )
    messages.success(request, f"Your request was sent to {name}.")
    return redirect("inbox:conversation", conversation_id=sent.conversation_id), None, 200


def _seller_page_post(request, seller):
    """POST on a seller's profile or gig page: a request. (response, form, status)."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path()), None, 302
    return _send_request(request, seller)


@require_http_methods(["GET", "POST"])
def gig_detail(request, gig_id):
    gig = selectors.gig_detail(gig_id=gig_id)
    request_form, status = _empty_request_form(), 200
    if request.method == "POST":
        response, request_form, status = _seller_page_post(request, gig.seller)
        if response is not None:
            return response
    return render(
        request,
        "orders/gig.html",
        {
            "gig": gig,
            "seller_online": gig.seller_id in online_user_ids([gig.seller_id]),
            "seller_away": current_away(user=gig.seller),
            "client_id": uuid.uuid4(),
            "request_form": _with_limits(request_form),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
def user_profile(request, username):
    person = public_profile(username=username)
    request_form, status = _empty_request_form(), 200
    if request.method == "POST":
        response, request_form, status = _seller_page_post(request, person)
        if response is not None:
            return response
    return render(
        request,
        "orders/user_profile.html",
        {
            "person": person,
            "gigs": selectors.gigs_of_seller(seller=person),
            "figures": inbox_selectors.response_figures(seller=person) if person.profile.is_seller else None,
            "online": person.pk in online_user_ids([person.pk]),
            "away": current_away(user=person) if person.profile.is_seller else None,
            "client_id": uuid.uuid4(),
            "request_form": _with_limits(request_form),
        },
        status=status,
    )


# --- in a conversation: custom offers, calls, consultations (sellers) ------------------------


def _membership_or_404(request, conversation_id):
    try:
        return inbox_selectors.conversation_for_user(user=request.user, conversation_id=conversation_id)
    except NotFound:
        raise Http404("Conversation not found") from None


def _is_htmx(request) -> bool:
    return bool(getattr(request, "htmx", False))


def _tool_form(request, template: str, context: dict, *, page_template: str, status: int):
    """A thread tool's form: the fragment for htmx (it swaps itself, errors included), else a
    page of its own (without script)."""
    if _is_htmx(request):
        return render(request, template, context, status=status)
    return render(request, page_template, {**context, "form_template": template}, status=status)


OFFER_FIELDS = ("gig", "title", "description", "price", "delivery_days", "revisions", "expires_in_days")
OFFER_ERROR_FIELDS = {
    "invalid_price": "price",
    "invalid_delivery_days": "delivery_days",
    "invalid_revisions": "revisions",
    "invalid_expiry": "expires_in_days",
}
OFFER_DEFAULTS = {field: "" for field in OFFER_FIELDS} | {"expires_in_days": "7"}


def _offer_form_context(request, membership, *, values=None, errors=None, sent=None) -> dict:
    return {
        "conversation_id": membership.conversation_id,
        "my_gigs": selectors.gigs_of_seller(seller=request.user),
        "offer_form": {"values": values or OFFER_DEFAULTS, "errors": errors or {}, "sent": sent},
        "limits": _limits(),
    }


@login_required
@require_POST
def offer_new(request, conversation_id):
    """A seller's custom offer in this conversation, from one of their gigs (whose terms fill
    what is left blank) or stand-alone."""
    membership = _membership_or_404(request, conversation_id)
    values = {field: request.POST.get(field, "") for field in OFFER_FIELDS}
    errors, gig = {}, None
    if values["gig"]:
        try:
            gig = selectors.gig_of_seller(seller=request.user, gig_id=values["gig"])
        except NotFound:
            errors["gig"] = "Choose one of your gigs, or a stand-alone offer."
        else:
            if not gig.is_active:
                errors["gig"] = "This gig is deactivated; show it again or make a stand-alone offer."
    checks = {
        "description": lambda value: services.clean_text(value, what="The offer's description"),
        "expires_in_days": _int_check(
            low=1,
            high=services.OFFER_EXPIRY_DAYS_MAX,
            message=f"An offer is valid for 1 to {services.OFFER_EXPIRY_DAYS_MAX} days.",
            code="invalid_expiry",
        ),
    }
    if values["title"].strip():
        checks["title"] = lambda value: services.clean_text(value, what="The title", max_length=120)
    terms = {
        "price": services.clean_price,
        "delivery_days": services.clean_delivery_days,
        "revisions": services.clean_revisions,
    }
    for field, check in terms.items():
        # From a gig, a blank term is the gig's; stand-alone, price and delivery are required.
        if values[field].strip() or (gig is None and field != "revisions" and "gig" not in errors):
            checks[field] = check
    if request.user.profile.is_seller:  # else the service refuses first, saying who may
        errors.update(_check_fields(values, checks))
    status = 422
    if not errors:
        try:
            offer = services.create_offer(
                seller=request.user,
                conversation=membership.conversation,
                description=values["description"],
                price=values["price"].strip() or None,
                delivery_days=values["delivery_days"].strip() or None,
                revisions=values["revisions"].strip() or None,
                expires_in_days=values["expires_in_days"],
                gig=gig,
                title=values["title"].strip(),
            )
        except DomainError as exc:
            errors, status = _refusal(exc, OFFER_ERROR_FIELDS), exc.status
        else:
            return _tool_sent(
                request,
                membership,
                done=f"Offer “{offer.title}” sent.",
                message_id=offer.message_id,
                template="orders/_offer_form.html",
                context=_offer_form_context(request, membership, sent=offer.title),
            )
    context = _offer_form_context(request, membership, values=values, errors=errors)
    return _tool_form(
        request, "orders/_offer_form.html", context, page_template="orders/thread_tool.html", status=status
    )


def _tool_sent(request, membership, *, done, message_id, template, context):
    """After a tool posted its card: htmx gets a fresh form (and an event for the page's script
    to show the card), JSON the card's message id, a plain post the conversation again."""
    if _is_htmx(request):
        response = render(request, template, context)
        response["HX-Trigger"] = json.dumps({"card-posted": {"message": done}})
        return response
    fallback = reverse("inbox:conversation", args=[membership.conversation_id])
    return _answer(request, fallback=fallback, done=done, message_id=message_id)


CONSULTATION_DURATIONS = (15, 30, 45, 60, 90, 120)
CONSULTATION_ERROR_FIELDS = {"invalid_duration": "duration_minutes", "invalid_start": "starts_at"}


def _parse_local_datetime(raw) -> datetime:
    """A datetime-local value (2026-05-04T15:30), in the viewer's own time zone."""
    try:
        moment = datetime.fromisoformat(str(raw).strip())
    except ValueError:
        raise InvalidInput("Pick a date and a time.", code="invalid_start") from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    return moment


def _consultation_context(membership, *, values=None, errors=None, sent=None) -> dict:
    return {
        "conversation_id": membership.conversation_id,
        "consultation_durations": CONSULTATION_DURATIONS,
        "consultation_form": {
            "values": values or {"starts_at": "", "duration_minutes": "30"},
            "errors": errors or {},
            "sent": sent,
        },
    }


@login_required
@require_POST
def consultation_new(request, conversation_id):
    """A seller offers a consultation slot (a time in their own zone; the buyer sees theirs)."""
    membership = _membership_or_404(request, conversation_id)
    values = {field: request.POST.get(field, "") for field in ("starts_at", "duration_minutes")}
    errors = _check_fields(values, {"starts_at": _parse_local_datetime})
    status = 422
    if not errors:
        try:
            call = services.offer_consultation(
                seller=request.user,
                conversation=membership.conversation,
                starts_at=_parse_local_datetime(values["starts_at"]),
                duration_minutes=values["duration_minutes"],
            )
        except DomainError as exc:
            errors, status = _refusal(exc, CONSULTATION_ERROR_FIELDS), exc.status
        else:
            when = timezone.localtime(call.starts_at)
            return _tool_sent(
                request,
                membership,
                done=f"Consultation offered for {when:%b %-d at %H:%M}.",
                message_id=call.message_id,
                template="orders/_consultation_form.html",
                context=_consultation_context(membership, sent=f"{when:%b %-d at %H:%M}"),
            )
    context = _consultation_context(membership, values=values, errors=errors)
    return _tool_form(
        request,
        "orders/_consultation_form.html",
        context,
        page_template="orders/thread_tool.html",
        status=status,
    )


@login_required
@require_POST
def call_start(request, conversation_id):
    """Only sellers start a video call: a card with a fresh meeting link."""
    membership = _membership_or_404(request, conversation_id)
    fallback = reverse("inbox:conversation", args=[membership.conversation_id])
    try:
        call = services.start_call(seller=request.user, conversation=membership.conversation)
    except DomainError as exc:
        return _answer(request, fallback=fallback, error=exc)
    return _answer(
        request,
        fallback=fallback,
        done="Call started: the link is in the thread.",
        message_id=call.message_id,
    )


# --- deciding on a card: offers and consultation slots ----------------------------------------


@login_required
@require_POST
def offer_decide(request, offer_id, decision):
    """Accept, decline (the buyer) or withdraw (the seller) a pending offer. The service decides
    once: a second click, another tab or a retry is told what already happened."""
    try:
        offer = selectors.offer_for_user(user=request.user, offer_id=offer_id)
    except NotFound:
        raise Http404("Offer not found") from None
    fallback = reverse("inbox:conversation", args=[offer.conversation_id])
    data = {"message_id": offer.message_id}
    try:
        if decision == "accept":
            order = services.accept_offer(buyer=request.user, offer=offer)
            data.update(order_number=order.number, order_url=reverse("orders:order", args=[order.number]))
            done = f"Offer accepted: order #{order.number} has started."
        elif decision == "decline":
            services.decline_offer(buyer=request.user, offer=offer)
            done = "Offer declined."
        else:
            services.withdraw_offer(seller=request.user, offer=offer)
            done = "Offer withdrawn."
    except DomainError as exc:
        return _answer(request, fallback=fallback, error=exc, **data)
    return _answer(request, fallback=fallback, done=done, **data)


@login_required
@require_POST
def call_book(request, call_id):
    try:
        call = selectors.call_for_user(user=request.user, call_id=call_id)
    except NotFound:
        raise Http404("Call not found") from None
    fallback = reverse("inbox:conversation", args=[call.conversation_id])
    try:
        call = services.book_consultation(buyer=request.user, call=call)
    except DomainError as exc:
        return _answer(request, fallback=fallback, error=exc, message_id=call.message_id)
    when = timezone.localtime(call.starts_at)
    return _answer(
        request, fallback=fallback, done=f"Booked for {when:%b %-d at %H:%M}.", message_id=call.message_id
    )


# --- orders ---------------------------------------------------------------------------------

STATUS_FILTERS = [("", "All"), ("open", "Open"), *Order.Status.choices]


@login_required
@require_GET
def order_list(request):
    """The user's orders, as a buyer or as a seller, by status, newest first."""
    user = request.user
    role = request.GET.get("role") or ("seller" if user.profile.is_seller else "buyer")
    status = request.GET.get("status") or None
    before = _row_id(request.GET.get("before"))
    error = None
    try:
        orders, next_before = selectors.orders_for_user(user=user, role=role, status=status, before=before)
    except DomainError as exc:
        orders, next_before, error = [], None, exc
    context = {
        "orders": orders,
        "next_before": next_before,
        "role": role,
        "status": status or "",
        "status_filters": STATUS_FILTERS,
        "error": error.detail if error else "",
    }
    return render(request, "orders/order_list.html", context, status=error.status if error else 200)


def _order_or_404(request, number) -> Order:
    try:
        return selectors.order_for_user(user=request.user, number=number)
    except NotFound:
        raise Http404("Order not found") from None


def _allowed_actions(order: Order, user, timeline) -> set[str]:
    """What the viewer can do now (the services decide anyway)."""
    status, is_buyer = order.status, order.buyer_id == user.pk
    allowed = set()
    if is_buyer and status == Order.Status.ACTIVE and not order.requirements_submitted_at:
        allowed.add("requirements")
    if not is_buyer and status in (Order.Status.ACTIVE, Order.Status.REVISION_REQUESTED):
        allowed.add("deliver")
    if is_buyer and status == Order.Status.DELIVERED:
        allowed.add("complete")
        if order.revisions_left:
            allowed.add("revision")
    if status == Order.Status.ACTIVE:  # once work was delivered, the buyer asks for a revision
        allowed.add("cancel")
    reviewed = any(event.kind == OrderEvent.Kind.REVIEW and event.actor_id == user.pk for event in timeline)
    if status == Order.Status.COMPLETED and not reviewed:
        allowed.add("review")
    return allowed


def _order_panel_context(request, order: Order, *, forms=None) -> dict:
    timeline = selectors.order_timeline(order=order)
    is_buyer = order.buyer_id == request.user.pk
    return {
        "order": order,
        "role": "buyer" if is_buyer else "seller",
        "other": order.seller if is_buyer else order.buyer,
        "timeline": timeline,
        "allowed": _allowed_actions(order, request.user, timeline),
        "forms": forms or {},
    }


def _order_membership(request, order: Order):
    """The viewer's side of the order's conversation (names, the other person), or 404."""
    try:
        return inbox_selectors.conversation_for_user(
            user=request.user, conversation_id=order.conversation_id, details=True
        )
    except NotFound:
        raise Http404("Order not found") from None


def _order_page(request, order: Order, *, forms=None, status=200):
    membership = _order_membership(request, order)
    context = {
        **_order_panel_context(request, order, forms=forms),
        "active": membership,
        "thread_messages": selectors.order_messages(order=order, viewer=request.user),
        "event_cursor": inbox_selectors.head_cursor(user_id=request.user.pk),
        "enter_sends": request.user.profile.enter_sends,
        "other_online": membership.other_user_id in online_user_ids([membership.other_user_id]),
        **upload_context(order.conversation_id),
    }
    return render(request, "orders/order.html", context, status=status)


@login_required
@require_GET
def order_detail(request, number):
    """The order page: status, terms, what each side can do now, the timeline, and the
    conversation's messages about this order with a composer (for the buyer or seller only)."""
    return _order_page(request, _order_or_404(request, number))


@login_required
@require_GET
def order_panel(request, number):
    """The order's status, actions and timeline: what a live page re-fetches when it changes."""
    order = _order_or_404(request, number)
    return render(request, "orders/_order_panel.html", _order_panel_context(request, order))


def _order_messages_after(order: Order, after, viewer) -> list:
    try:
        after = int(after)
    except (TypeError, ValueError):
        after = 0
    return [message for message in selectors.order_messages(order=order, viewer=viewer) if message.pk > after]


@login_required
@require_GET
def order_messages(request, number):
    """The order's messages after `after` (what a live order page appends)."""
    order = _order_or_404(request, number)
    membership = _order_membership(request, order)
    messages_after = _order_messages_after(order, request.GET.get("after"), request.user)
    return render(
        request, "orders/_order_messages.html", {"thread_messages": messages_after, "active": membership}
    )


@login_required
@require_POST
def order_send(request, number):
    """The order page's composer: a message into the same conversation, tagged with this order.
    Answers with the order's messages after `after`, so the page catches up too."""
    order = _order_or_404(request, number)
    membership = _order_membership(request, order)
    raw_client_id, raw_reply_to = request.POST.get("client_id"), request.POST.get("reply_to") or None
    try:
        client_id = uuid.UUID(raw_client_id) if raw_client_id else None
    except ValueError:
        client_id = None
    try:
        # An id no message can have is refused by the service like any foreign one.
        reply_to_id = (_row_id(raw_reply_to) or 0) if raw_reply_to else None
        message, _created = inbox_services.send_message(
            sender=request.user,
            conversation=membership.conversation,
            body=request.POST.get("body", ""),
            client_id=client_id,
            reply_to_id=reply_to_id,
            order=order,
            # Ids no upload can have are refused by the service like anyone else's.
            attachment_ids=[_row_id(raw) or 0 for raw in request.POST.getlist("attachments")[:50]],
            rate_limited=True,
        )
    except DomainError as exc:
        return JsonResponse({"error": exc.code, "detail": exc.detail}, status=exc.status)
    after = request.POST.get("after")
    messages_after = _order_messages_after(order, after if after else message.pk - 1, request.user)
    return render(
        request, "orders/_order_messages.html", {"thread_messages": messages_after, "active": membership}
    )


ORDER_ACTIONS = {
    # action: (the fields its form posts, what the page says once it is done)
    "requirements": (("requirements",), "Requirements sent: the seller can start."),
    "deliver": (("message",), "Delivered. The buyer can accept it or ask for a revision."),
    "revision": (("reason",), "Revision requested: the seller is told what to change."),
    "complete": ((), "Order complete. You can leave a review."),
    "cancel": (("reason",), "Order cancelled."),
    "review": (("rating", "text"), "Thank you: your review is posted."),
}


def _run_order_action(action: str, *, user, order: Order, values: dict) -> None:
    if action == "requirements":
        services.submit_requirements(buyer=user, order=order, requirements=values["requirements"])
    elif action == "deliver":
        services.deliver_order(seller=user, order=order, message=values["message"])
    elif action == "revision":
        services.request_revision(buyer=user, order=order, reason=values["reason"])
    elif action == "complete":
        services.complete_order(buyer=user, order=order)
    elif action == "cancel":
        services.cancel_order(user=user, order=order, reason=values["reason"])
    elif action == "review":
        services.leave_review(author=user, order=order, rating=values["rating"], text=values["text"])


@login_required
@require_POST
def order_action(request, number, action):
    """One step of the order by the buyer or the seller; a refusal shows on the order page, next
    to the form, with what was typed."""
    order = _order_or_404(request, number)
    fields, done = ORDER_ACTIONS[action]
    values = {field: request.POST.get(field, "") for field in fields}
    try:
        _run_order_action(action, user=request.user, order=order, values=values)
    except DomainError as exc:
        if _wants_json(request):
            return JsonResponse({"error": exc.code, "detail": exc.detail}, status=exc.status)
        order = _order_or_404(request, number)  # as it is now (the other side may have acted)
        return _order_page(
            request, order, forms={action: {"values": values, "error": exc.detail}}, status=exc.status
        )
    if _wants_json(request):
        return JsonResponse({"detail": done})
    messages.success(request, done)
    return redirect("orders:order", number=order.number)
