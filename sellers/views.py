"""Seller tools as pages. Thin: inbox and accounts services write, their selectors read."""

from datetime import date
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from inbox import selectors as inbox_selectors
from inbox import services as inbox_services
from inbox.placeholders import AUTO_REPLY_PLACEHOLDERS, QUICK_RESPONSE_PLACEHOLDERS
from inbox.services.replies import QUICK_RESPONSE_TITLE_MAX
from marketplace.accounts import selectors as account_selectors
from marketplace.accounts import services as account_services
from marketplace.errors import DomainError, InvalidInput, NotFound

from .charts import trend_chart


def seller_only(view):
    """Seller tools answer buyers with a page telling them how to become a seller."""

    @wraps(view)
    def checked(request, *args, **kwargs):
        if not request.user.profile.is_seller:
            return render(request, "sellers/not_a_seller.html", status=403)
        return view(request, *args, **kwargs)

    return login_required(checked)


@seller_only
@require_GET
def dashboard(request):
    board = inbox_selectors.seller_dashboard(seller=request.user)
    return render(
        request,
        "sellers/dashboard.html",
        {
            "board": board,
            "chart": trend_chart(board.trend),
            "away": account_selectors.current_away(user=request.user),
            "auto_reply": inbox_selectors.auto_reply_of(user=request.user),
        },
    )


def _parse_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


@seller_only
@require_http_methods(["GET", "POST"])
def availability(request):
    values, error, status = {"starts_on": "", "ends_on": "", "message": ""}, "", 200
    if request.method == "POST":
        values = {field: request.POST.get(field, "") for field in values}
        starts_on, ends_on = _parse_day(values["starts_on"]), _parse_day(values["ends_on"])
        try:
            if starts_on is None or ends_on is None:
                raise InvalidInput("Give the first and last day away as dates.")
            period = account_services.set_away(
                user=request.user, starts_on=starts_on, ends_on=ends_on, message=values["message"]
            )
        except DomainError as exc:
            error, status = exc.detail, exc.status
        else:
            messages.success(
                request, f"You are set as away from {period.starts_on:%b %-d} to {period.ends_on:%b %-d}."
            )
            return redirect("sellers:availability")
    return render(
        request,
        "sellers/availability.html",
        {
            "values": values,
            "error": error,
            "planned": account_selectors.planned_away(user=request.user),
            "today": account_selectors.local_today(request.user),
        },
        status=status,
    )


@seller_only
@require_POST
def availability_end(request):
    account_services.end_away(user=request.user)
    messages.success(request, "Welcome back: buyers no longer see you as away.")
    return redirect("sellers:availability")


@seller_only
@require_http_methods(["GET", "POST"])
def auto_reply(request):
    saved = inbox_selectors.auto_reply_of(user=request.user)
    values = {"body": saved.body if saved else "", "enabled": saved.enabled if saved else False}
    error, status = "", 200
    if request.method == "POST":
        values = {"body": request.POST.get("body", ""), "enabled": request.POST.get("enabled") == "on"}
        try:
            inbox_services.save_auto_reply(user=request.user, body=values["body"], enabled=values["enabled"])
        except DomainError as exc:
            error, status = exc.detail, exc.status
        else:
            messages.success(request, "Auto-reply on." if values["enabled"] else "Auto-reply off.")
            return redirect("sellers:auto-reply")
    return render(
        request,
        "sellers/auto_reply.html",
        {"values": values, "error": error, "placeholders": AUTO_REPLY_PLACEHOLDERS},
        status=status,
    )


def _quick_response_page(request, *, values, error="", editing=None, status=200):
    return render(
        request,
        "sellers/quick_responses.html",
        {
            "quick_responses": inbox_selectors.quick_responses_of(user=request.user),
            "values": values,
            "error": error,
            "editing": editing,
            "placeholders": QUICK_RESPONSE_PLACEHOLDERS,
            "title_max": QUICK_RESPONSE_TITLE_MAX,
        },
        status=status,
    )


@seller_only
@require_http_methods(["GET", "POST"])
def quick_responses(request):
    values = {"title": "", "body": ""}
    if request.method == "POST":
        values = {field: request.POST.get(field, "") for field in values}
        try:
            created = inbox_services.create_quick_response(user=request.user, **values)
        except DomainError as exc:
            return _quick_response_page(request, values=values, error=exc.detail, status=exc.status)
        messages.success(request, f"Quick response “{created.title}” saved.")
        return redirect("sellers:quick-responses")
    return _quick_response_page(request, values=values)


def _own_quick_response(request, quick_response_id):
    try:
        return inbox_selectors.quick_response_for_user(user=request.user, quick_response_id=quick_response_id)
    except NotFound:
        raise Http404("Quick response not found.") from None


@seller_only
@require_http_methods(["GET", "POST"])
def quick_response_edit(request, quick_response_id):
    editing = _own_quick_response(request, quick_response_id)
    values = {"title": editing.title, "body": editing.body}
    if request.method == "POST":
        values = {field: request.POST.get(field, "") for field in values}
        try:
            inbox_services.update_quick_response(quick_response=editing, **values)
        except DomainError as exc:
            return _quick_response_page(
                request, values=values, error=exc.detail, editing=editing, status=exc.status
            )
        messages.success(request, f"Quick response “{values['title'].strip()}” saved.")
        return redirect("sellers:quick-responses")
    return _quick_response_page(request, values=values, editing=editing)


@seller_only
@require_POST
def quick_response_delete(request, quick_response_id):
    quick_response = _own_quick_response(request, quick_response_id)
    inbox_services.delete_quick_response(quick_response=quick_response)
    messages.success(request, f"Quick response “{quick_response.title}” deleted.")
    return redirect("sellers:quick-responses")
