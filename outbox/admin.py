from django.contrib import admin

from .models import Entry


@admin.register(Entry)
class EntryAdmin(admin.ModelAdmin):
    """What is waiting to be published: a growing list means the broker or Redis is unreachable,
    or the relay (`manage.py relay_outbox`) is not running."""

    list_display = ["id", "kind", "created_at", "available_at", "attempts", "last_error"]
    list_filter = ["kind"]
    readonly_fields = ["kind", "payload", "created_at", "available_at", "attempts", "last_error"]

    def has_add_permission(self, request):
        return False
