from django.contrib import admin

from .models import Attachment


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    """Files sent in conversations, read-only: their state, size and type, when they were last
    opened, archived, restored or purged. Admins download them like participants (/files/<id>/)."""

    list_display = ["id", "name", "status", "content_type", "size", "uploader", "created_at"]
    list_filter = ["status", "content_type", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["name", "uploader__username"]
    list_select_related = ["uploader"]
    readonly_fields = [field.name for field in Attachment._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
