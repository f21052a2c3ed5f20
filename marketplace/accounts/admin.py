from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import ApiToken, AwayPeriod, Profile, User
from .services import announce_access_revoked, deactivate_user, ensure_profile


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False
    fields = ["display_name", "role", "headline", "timezone", "languages", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    inlines = [ProfileInline]
    list_display = [
        "username",
        "display_name",
        "email",
        "role",
        "email_verified_at",
        "is_active",
        "date_joined",
    ]
    list_filter = [
        "profile__role",
        "is_active",
        "is_staff",
        ("email_verified_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["username", "email", "profile__display_name"]
    list_select_related = ["profile"]
    fieldsets = [
        *BaseUserAdmin.fieldsets,
        ("Verification", {"fields": ["email_verified_at"]}),
    ]

    actions = ["deactivate"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            announce_access_revoked(user=obj)

    @admin.action(description="Deactivate the selected users (closes their sessions and sockets)")
    def deactivate(self, request, queryset):
        for user in queryset:
            deactivate_user(user=user)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # A profile inline left untouched on the add page saves nothing.
        ensure_profile(user=form.instance)

    @admin.display(ordering="profile__display_name")
    def display_name(self, user):
        return user.profile.display_name

    @admin.display(ordering="profile__role")
    def role(self, user):
        return user.profile.get_role_display()


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are shown by prefix only; the secret itself is never stored."""

    list_display = ["prefix", "user", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "prefix"]
    readonly_fields = ["user", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    exclude = ["digest"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        from .services import revoke_api_token

        for token in queryset:
            revoke_api_token(token=token)


@admin.register(AwayPeriod)
class AwayPeriodAdmin(admin.ModelAdmin):
    """Sellers' "Set availability" periods: first messages on these days do not count against
    their response rate. Read-only: a period set here afterwards would rewrite the figures."""

    list_display = ["user", "starts_on", "ends_on", "message", "created_at"]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    date_hierarchy = "starts_on"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
