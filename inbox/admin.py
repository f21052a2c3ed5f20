"""Admins read conversations, messages and events; history is not rewritten from here."""

from django.contrib import admin

from .models import AutoReply, Block, Conversation, Event, Label, Membership, Message, MessageRevision


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "conversation"
    fields = ["user", "unread_count", "last_read_message_id", "last_message_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["id", "sender", "body", "status", "created_at", "edited_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-id"]
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    list_display = ["id", "user_low", "user_high", "created_at", "last_message_at"]
    list_filter = [("last_message_at", admin.DateFieldListFilter)]
    search_fields = ["user_low__username", "user_high__username", "messages__body"]
    list_select_related = ["user_low", "user_high"]
    inlines = [MembershipInline, MessageInline]

    def get_search_results(self, request, queryset, search_term):
        queryset, _may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return queryset.distinct(), False


class RevisionInline(admin.TabularInline):
    """Every text the message had before an edit or its deletion (disputes need them)."""

    model = MessageRevision
    fields = ["change", "body", "replaced_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "Earlier versions (oldest first)"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "conversation",
        "sender",
        "short_body",
        "status",
        "created_at",
        "edited_at",
        "deleted_at",
    ]
    list_filter = [
        "status",
        "is_automatic",
        ("created_at", admin.DateFieldListFilter),
        ("edited_at", admin.EmptyFieldListFilter),
        ("deleted_at", admin.EmptyFieldListFilter),
    ]
    inlines = [RevisionInline]
    search_fields = ["body", "sender__username", "sender__profile__display_name"]
    list_select_related = ["sender"]
    date_hierarchy = "created_at"

    @admin.display(description="body")
    def short_body(self, message):
        return message.body[:80]


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["user", "cursor", "type", "created_at"]
    list_filter = ["type", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    ordering = ["-created_at"]


@admin.register(Label)
class LabelAdmin(ReadOnlyAdmin):
    list_display = ["name", "user", "color", "created_at"]
    search_fields = ["name", "user__username"]
    list_select_related = ["user"]


@admin.register(Block)
class BlockAdmin(admin.ModelAdmin):
    """Admins can lift a block (delete it); blocks are made by users."""

    list_display = ["blocker", "blocked", "created_at"]
    search_fields = ["blocker__username", "blocked__username"]
    list_select_related = ["blocker", "blocked"]
    readonly_fields = ["blocker", "blocked", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AutoReply)
class AutoReplyAdmin(ReadOnlyAdmin):
    """Sellers' auto-replies (screened by moderation when saved): who sends what automatically."""

    list_display = ["user", "enabled", "short_body", "updated_at"]
    list_filter = ["enabled"]
    search_fields = ["user__username", "body"]
    list_select_related = ["user"]

    @admin.display(description="body")
    def short_body(self, auto_reply):
        return auto_reply.body[:80]
