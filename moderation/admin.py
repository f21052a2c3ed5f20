"""Moderators' admin: the review queue of held messages, the audit log of decisions, reports,
and restrictions.

Every write goes through moderation.services with the staff member as moderator: approving
delivers the message, rejecting tells its sender why, resolving closes a report, restricting
and lifting change what a user may send. Nothing here rewrites history: no deletes, no edits.

User text is only ever escaped into the pages (format_html / escape); the review page wraps
the findings' spans of the escaped text in <mark>."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import escape, format_html, format_html_join
from django.utils.timesince import timesince

from inbox.admin import ReadOnlyAdmin
from inbox.models import Message
from marketplace.errors import DomainError, InvalidInput

from . import selectors, services
from .models import HeldMessage, ModerationDecision, Report, Restriction
from .scanners import SPAM_KINDS

ACTION_TEXT_TEMPLATE = "admin/moderation/action_with_text.html"
REVIEW_TEMPLATE = "admin/moderation/heldmessage/review.html"
DEFAULT_REJECT_REASON = "This message breaks the messaging rules."


# --- helpers ------------------------------------------------------------------------------------


def highlighted_text(body: str, findings) -> str:
    """`body` escaped, each finding's span wrapped in <mark> (overlapping spans merged). Spans
    that do not fit the text, or cover nothing (findings about the whole message), are skipped."""
    spans = []
    for finding in findings or []:
        if not isinstance(finding, dict):
            continue
        try:
            start, end = int(finding.get("start", 0)), int(finding.get("end", 0))
        except (TypeError, ValueError):
            continue
        start, end = max(0, min(start, len(body))), max(0, min(end, len(body)))
        if end > start:
            spans.append((start, end, str(finding.get("kind", ""))))
    spans.sort()
    merged: list[list] = []
    for start, end, kind in spans:
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            merged[-1][2].append(kind)
        else:
            merged.append([start, end, [kind]])
    parts, position = [], 0
    for start, end, kinds in merged:
        parts.append(escape(body[position:start]))
        parts.append(
            format_html(
                '<mark class="finding" title="{}">{}</mark>', ", ".join(dict.fromkeys(kinds)), body[start:end]
            )
        )
        position = end
    parts.append(escape(body[position:]))
    return format_html_join("", "{}", ((part,) for part in parts))


def recipient_of(message: Message):
    conversation = message.conversation
    return conversation.user_high if conversation.user_low_id == message.sender_id else conversation.user_low


def admin_link(viewname: str, pk, text) -> str:
    if pk is None:
        return "-"
    return format_html('<a href="{}">{}</a>', reverse(viewname, args=[pk]), text)


def user_link(user) -> str:
    if user is None:
        return "-"
    return admin_link("admin:accounts_user_change", user.pk, user.username)


def _findings(message: Message) -> list[dict]:
    return [f for f in (message.moderation_findings or []) if isinstance(f, dict)]


def suggested_reject_reason(message: Message) -> str:
    """What the sender would be told: the strongest finding's sentence, if any."""
    findings = sorted(_findings(message), key=lambda f: -float(f.get("score") or 0))
    detail = next((str(f.get("detail")) for f in findings if f.get("detail")), "")
    return detail or DEFAULT_REJECT_REASON


class ActionWithText:
    """A changelist action that first asks for a text (a reason, a resolution note) on an
    intermediate page, as Django's "delete selected" asks for confirmation."""

    def ask_for_text(self, request, queryset, *, action: str, title: str, intro: str, field: dict):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "intro": intro,
            "queryset": queryset,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "field": field,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, ACTION_TEXT_TEMPLATE, context)


# --- held messages: the review queue ---------------------------------------------------------


class FindingKindFilter(admin.SimpleListFilter):
    title = "finding"
    parameter_name = "finding"

    def lookups(self, request, model_admin):
        return [
            ("email", "Email address"),
            ("phone", "Phone number"),
            ("off_platform", "Off-platform channel"),
            ("spam", "Spam"),
            ("none", "No finding (a scanner failed)"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.filter(moderation_findings=[])
        if value:
            kinds = set(SPAM_KINDS) if value == "spam" else {value}
            rows = [
                m.pk
                for m in queryset.only("pk", "moderation_findings")
                if any(str(f.get("kind", "")) in kinds for f in _findings(m))
            ]
            return queryset.filter(pk__in=rows)
        return queryset


@admin.register(HeldMessage)
class HeldMessageAdmin(ActionWithText, admin.ModelAdmin):
    """Messages waiting for review, oldest first. A message's page shows its text with the
    findings highlighted and its sender's history; Approve delivers it, Reject tells the sender."""

    list_display = ["id", "sender", "recipient", "short_body", "findings_summary", "created_at", "waiting"]
    list_display_links = ["id", "short_body"]
    list_filter = [FindingKindFilter, ("created_at", admin.DateFieldListFilter)]
    search_fields = ["body", "sender__username", "sender__profile__display_name"]
    list_select_related = ["sender", "conversation__user_low", "conversation__user_high"]
    ordering = ["created_at", "id"]
    actions = ["approve_selected", "reject_selected"]
    list_per_page = 50

    def get_queryset(self, request):
        return super().get_queryset(request).filter(status=Message.Status.HELD, deleted_at__isnull=True)

    def has_add_permission(self, request):
        return False  # messages are written by users

    def has_change_permission(self, request, obj=None):
        return False  # nobody rewrites a message; moderators decide (has_moderate_permission)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_moderate_permission(self, request, obj=None):
        return request.user.has_perm("moderation.change_heldmessage")

    @admin.display(description="to")
    def recipient(self, message):
        return recipient_of(message)

    @admin.display(description="text")
    def short_body(self, message):
        return message.body if len(message.body) <= 80 else message.body[:79] + "…"

    @admin.display(description="findings")
    def findings_summary(self, message):
        kinds = [str(f.get("kind", "")) for f in _findings(message)]
        return ", ".join(dict.fromkeys(kinds)) or "scanner failed"

    @admin.display(description="waiting")
    def waiting(self, message):
        return timesince(message.created_at)

    # -- the review page -------------------------------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/approve/",
                self.admin_site.admin_view(self.approve_view),
                name="{}_{}_approve".format(*info),
            ),
            path(
                "<path:object_id>/reject/",
                self.admin_site.admin_view(self.reject_view),
                name="{}_{}_reject".format(*info),
            ),
            *super().get_urls(),
        ]

    def _message_or_404(self, object_id) -> Message:
        # Any message: a decided one shows what was decided (a second moderator's tab).
        message = (
            Message.objects.select_related(
                "sender__profile", "conversation__user_low__profile", "conversation__user_high__profile"
            )
            .filter(pk=unquote(object_id))
            .first()
            if str(object_id).isdigit()
            else None
        )
        if message is None:
            raise Http404("No such message.")
        return message

    def change_view(self, request, object_id, form_url="", extra_context=None):
        message = self._message_or_404(object_id)
        if not self.has_view_permission(request, message):
            raise PermissionDenied
        recipient = recipient_of(message)
        findings = [dict(finding) for finding in _findings(message)]
        for finding in findings:
            start, end = finding.get("start"), finding.get("end")
            finding["excerpt"] = (
                message.body[start:end]
                if isinstance(start, int) and isinstance(end, int) and end > start
                else ""
            )
        decisions = list(
            ModerationDecision.objects.filter(message=message)
            .select_related("moderator")
            .order_by("created_at")
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Review message {message.pk}",
            "subtitle": None,
            "message": message,
            "recipient": recipient,
            "highlighted": highlighted_text(message.body, findings),
            "findings": findings,
            "decisions": decisions,
            "history": selectors.sender_history(message.sender, exclude_message_id=message.pk),
            "is_held": message.status == Message.Status.HELD,
            "can_moderate": self.has_moderate_permission(request),
            "suggested_reason": suggested_reject_reason(message),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, REVIEW_TEMPLATE, context)

    def _decide(self, request, object_id, decide):
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:moderation_heldmessage_change", args=[object_id]))
        message = self._message_or_404(object_id)
        if not self.has_moderate_permission(request):
            raise PermissionDenied
        try:
            done = decide(message)
        except DomainError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:moderation_heldmessage_change", args=[message.pk]))
        self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:moderation_heldmessage_changelist"))

    def approve_view(self, request, object_id):
        note = request.POST.get("note", "")

        def approve(message):
            services.approve_message(message=message, moderator=request.user, note=note)
            return f"Message {message.pk} approved: {recipient_of(message).username} has it now."

        return self._decide(request, object_id, approve)

    def reject_view(self, request, object_id):
        reason, note = request.POST.get("reason", "").strip(), request.POST.get("note", "")

        def reject(message):
            if not reason:
                raise InvalidInput("Give a reason for the rejection: its sender is told.", code="no_reason")
            services.reject_message(message=message, moderator=request.user, reason=reason, note=note)
            return f"Message {message.pk} rejected: {message.sender.username} is told why."

        return self._decide(request, object_id, reject)

    # -- actions on many ---------------------------------------------------------------------

    @admin.action(description="Approve the selected messages (deliver them)", permissions=["moderate"])
    def approve_selected(self, request, queryset):
        approved, skipped = 0, 0
        for message in queryset.select_related("conversation"):
            try:
                services.approve_message(message=message, moderator=request.user)
            except DomainError:
                skipped += 1
            else:
                approved += 1
        self._report_outcome(request, "approved and delivered", approved, skipped)

    @admin.action(description="Reject the selected messages (with a reason)…", permissions=["moderate"])
    def reject_selected(self, request, queryset):
        reason = request.POST.get("reason", "").strip()
        if "apply" in request.POST and reason:
            note = request.POST.get("note", "")
            rejected, skipped = 0, 0
            for message in queryset:
                try:
                    services.reject_message(message=message, moderator=request.user, reason=reason, note=note)
                except DomainError:
                    skipped += 1
                else:
                    rejected += 1
            self._report_outcome(request, "rejected; their senders are told why", rejected, skipped)
            return None
        return self.ask_for_text(
            request,
            queryset,
            action="reject_selected",
            title="Reject messages",
            intro="These messages will never be delivered. Their senders see the reason below.",
            field={
                "name": "reason",
                "label": "Reason (shown to the senders)",
                "value": reason or DEFAULT_REJECT_REASON,
                "error": "Say why: the senders are told." if "apply" in request.POST else "",
                "note": True,
                "submit": "Reject them",
            },
        )

    def _report_outcome(self, request, verb: str, done: int, skipped: int):
        text = f"{done} message(s) {verb}."
        if skipped:
            text += f" {skipped} were no longer waiting for review (another moderator decided)."
        self.message_user(request, text, messages.SUCCESS if done else messages.WARNING)


# --- the audit log of decisions ---------------------------------------------------------------


@admin.register(ModerationDecision)
class ModerationDecisionAdmin(ReadOnlyAdmin):
    """Who approved or rejected which message, and when (written by the services only)."""

    list_display = ["created_at", "decision", "moderator", "message_link", "sender", "note"]
    list_filter = ["decision", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["moderator__username", "message__sender__username", "message__body", "note"]
    list_select_related = ["moderator", "message__sender"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    fields = ["created_at", "decision", "moderator", "message_link", "sender", "message_text", "note"]
    readonly_fields = fields

    @admin.display(description="message", ordering="message")
    def message_link(self, decision):
        return admin_link(
            "admin:moderation_heldmessage_change", decision.message_id, f"#{decision.message_id}"
        )

    @admin.display(description="sender", ordering="message__sender__username")
    def sender(self, decision):
        return decision.message.sender

    @admin.display(description="text")
    def message_text(self, decision):
        return decision.message.body


# --- reports ---------------------------------------------------------------------------------


@admin.register(Report)
class ReportAdmin(ActionWithText, ReadOnlyAdmin):
    """What users reported; moderators resolve them with a note."""

    list_display = [
        "created_at",
        "reason",
        "status",
        "reporter",
        "reported_user",
        "conversation_link",
        "message_link",
        "resolved_by",
        "resolved_at",
    ]
    list_filter = ["status", "reason", ("created_at", admin.DateFieldListFilter)]
    search_fields = [
        "reporter__username",
        "reported_user__username",
        "reported_user__profile__display_name",
        "note",
        "message__body",
        "resolution",
    ]
    list_select_related = ["reporter", "reported_user", "resolved_by"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    fields = [
        "created_at",
        "status",
        "reason",
        "note",
        "reporter",
        "reported_user",
        "conversation_link",
        "message_link",
        "message_text",
        "resolved_by",
        "resolved_at",
        "resolution",
    ]
    readonly_fields = fields
    actions = ["resolve_selected"]

    def has_moderate_permission(self, request, obj=None):
        return request.user.has_perm("moderation.change_report")

    @admin.display(description="conversation", ordering="conversation")
    def conversation_link(self, report):
        return admin_link(
            "admin:inbox_conversation_change", report.conversation_id, f"#{report.conversation_id}"
        )

    @admin.display(description="message", ordering="message")
    def message_link(self, report):
        return admin_link("admin:inbox_message_change", report.message_id, f"#{report.message_id}")

    @admin.display(description="reported message")
    def message_text(self, report):
        return report.message.body if report.message_id else "(the whole conversation)"

    @admin.action(description="Resolve the selected reports (with a note)…", permissions=["moderate"])
    def resolve_selected(self, request, queryset):
        resolution = request.POST.get("resolution", "").strip()
        if "apply" in request.POST and resolution:
            resolved, skipped = 0, 0
            for report in queryset:
                try:
                    services.resolve_report(report=report, moderator=request.user, resolution=resolution)
                except DomainError:
                    skipped += 1
                else:
                    resolved += 1
            text = f"{resolved} report(s) resolved."
            if skipped:
                text += f" {skipped} were already resolved."
            self.message_user(request, text, messages.SUCCESS if resolved else messages.WARNING)
            return None
        return self.ask_for_text(
            request,
            queryset,
            action="resolve_selected",
            title="Resolve reports",
            intro="Say what was done (kept with each report for the next moderator).",
            field={
                "name": "resolution",
                "label": "Resolution",
                "value": resolution,
                "error": "Say what was done." if "apply" in request.POST else "",
                "note": False,
                "submit": "Resolve them",
            },
        )


# --- restrictions: the ladder's steps and admins' warnings and suspensions -------------------


def _in_force_condition(now) -> Q:
    return Q(lifted_at__isnull=True, starts_at__lte=now) & (Q(ends_at__isnull=True) | Q(ends_at__gt=now))


class InForceFilter(admin.SimpleListFilter):
    title = "in force"
    parameter_name = "in_force"

    def lookups(self, request, model_admin):
        return [("yes", "In force"), ("no", "Ended or lifted")]

    def queryset(self, request, queryset):
        condition = _in_force_condition(timezone.now())
        if self.value() == "yes":
            return queryset.filter(condition)
        if self.value() == "no":
            return queryset.exclude(condition)
        return queryset


class RestrictionAddForm(forms.ModelForm):
    """What an admin gives: a warning, or a suspension (until a date, or permanent)."""

    kind = forms.ChoiceField(
        choices=[
            (Restriction.Kind.WARNING, "Warning"),
            (Restriction.Kind.SUSPENSION, "Suspension from messaging"),
        ]
    )

    class Meta:
        model = Restriction
        fields = ["user", "kind", "reason", "ends_at"]
        help_texts = {
            "reason": "The user sees it, and so does the next admin.",
            "ends_at": "When a suspension ends; leave empty for a permanent one. A warning has no end.",
        }

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why, for the user and the next admin.")
        return reason

    def clean(self):
        cleaned = super().clean()
        ends_at = cleaned.get("ends_at")
        if ends_at is not None:
            if cleaned.get("kind") == Restriction.Kind.WARNING:
                self.add_error("ends_at", "A warning has no end: leave it empty.")
            elif ends_at <= timezone.now():
                self.add_error("ends_at", "The end of a suspension is in the future.")
        return cleaned


@admin.register(Restriction)
class RestrictionAdmin(admin.ModelAdmin):
    """Every step: limit notices, warnings and suspensions, from the ladder or from admins.
    Admins add a warning or a suspension and lift any step; nothing is edited or deleted."""

    list_display = [
        "user",
        "kind",
        "reason",
        "starts_at",
        "ends",
        "in_force",
        "given_by",
        "lifted_at",
        "lifted_by",
    ]
    list_filter = ["kind", InForceFilter, ("starts_at", admin.DateFieldListFilter)]
    search_fields = ["user__username", "user__email", "user__profile__display_name", "reason"]
    list_select_related = ["user", "created_by", "lifted_by"]
    autocomplete_fields = ["user"]
    ordering = ["-starts_at", "-id"]
    actions = ["lift_selected"]
    readonly_fields = [
        "user",
        "kind",
        "reason",
        "starts_at",
        "ends",
        "in_force",
        "given_by",
        "lifted_at",
        "lifted_by",
    ]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "kind", "reason", "ends_at"]
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = RestrictionAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def has_change_permission(self, request, obj=None):
        return False  # a step is lifted (the action), never rewritten

    def has_delete_permission(self, request, obj=None):
        return False  # the history stays; lifting stops a step from applying and counting

    def has_moderate_permission(self, request, obj=None):
        return request.user.has_perm("moderation.change_restriction")

    def save_model(self, request, obj, form, change):
        created = services.restrict(
            user=obj.user,
            kind=obj.kind,
            reason=obj.reason,
            moderator=request.user,
            ends_at=obj.ends_at,
        )
        obj.pk, obj.starts_at, obj.created_by = created.pk, created.starts_at, created.created_by
        obj.reason = created.reason

    @admin.display(description="ends")
    def ends(self, restriction):
        if restriction.ends_at is not None:
            return restriction.ends_at
        return "permanent" if restriction.kind == Restriction.Kind.SUSPENSION else "-"

    @admin.display(description="in force", boolean=True)
    def in_force(self, restriction):
        return restriction.is_in_force()

    @admin.display(description="given by", ordering="created_by__username")
    def given_by(self, restriction):
        return restriction.created_by or "the messaging limit"

    @admin.action(description="Lift the selected restrictions", permissions=["moderate"])
    def lift_selected(self, request, queryset):
        lifted = 0
        for restriction in queryset.filter(lifted_at__isnull=True):
            services.lift_restriction(restriction=restriction, moderator=request.user)
            lifted += 1
        text = f"{lifted} restriction(s) lifted: they no longer apply or count towards the ladder."
        self.message_user(request, text, messages.SUCCESS if lifted else messages.WARNING)
