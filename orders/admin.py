from django.contrib import admin

from .models import Gig


@admin.register(Gig)
class GigAdmin(admin.ModelAdmin):
    list_display = ["title", "seller", "price", "delivery_days", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["title", "seller__username"]
    list_select_related = ["seller"]
