"""Admins read gigs, requests, offers, orders, reviews and calls: an order's history is not
rewritten from here. The one write is taking a gig down (deactivating it), through the service.

"Buyers" shows the Top buyer rule (orders.selectors.buyer_standing) for every buyer, computed in
the list's one query."""

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Q

from inbox.admin import ReadOnlyAdmin
from marketplace.accounts.models import Profile

from . import selectors, services
from .models import Buyer, BuyerRequest, Call, CustomOffer, Gig, Order, OrderEvent, Review


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- gigs: read, and taken down by an admin -------------------------------------------------


@admin.register(Gig)
class GigAdmin(admin.ModelAdmin):
    list_display = ["title", "seller", "price", "delivery_days", "revisions", "is_active", "created_at"]
    list_filter = ["is_active", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["title", "seller__username", "seller__profile__display_name"]
    list_select_related = ["seller"]
    fields = [
        "seller",
        "title",
        "description",
        "price",
        "delivery_days",
        "revisions",
        "is_active",
        "created_at",
    ]
    actions = ["deactivate"]

    def get_readonly_fields(self, request, obj=None):
        # Admins take a gig down; putting it back up is its seller's decision.
        if obj is not None and obj.is_active:
            return [field for field in self.fields if field != "is_active"]
        return self.fields

    def has_add_permission(self, request):
        return False  # sellers publish gigs

    def has_delete_permission(self, request, obj=None):
        return False  # offers and orders refer to it: deactivate instead

    def save_model(self, request, obj, form, change):
        if "is_active" in form.changed_data:
            services.update_gig(seller=obj.seller, gig=obj, is_active=obj.is_active)

    @admin.action(description="Deactivate the selected gigs (hidden from buyers; orders keep them)")
    def deactivate(self, request, queryset):
        gigs = list(queryset.filter(is_active=True).select_related("seller"))
        for gig in gigs:
            services.update_gig(seller=gig.seller, gig=gig, is_active=False)
        self.message_user(request, f"{len(gigs)} gig(s) deactivated.", messages.SUCCESS)


# --- requests, offers, orders, reviews, calls: history, read-only ---------------------------


@admin.register(BuyerRequest)
class BuyerRequestAdmin(ReadOnlyAdmin):
    list_display = ["id", "buyer", "seller", "budget", "deadline", "created_at"]
    list_filter = [("created_at", admin.DateFieldListFilter), ("deadline", admin.DateFieldListFilter)]
    search_fields = ["description", "buyer__username", "seller__username"]
    list_select_related = ["buyer", "seller"]
    date_hierarchy = "created_at"


@admin.register(CustomOffer)
class CustomOfferAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "title",
        "seller",
        "buyer",
        "price",
        "delivery_days",
        "status",
        "expires_at",
        "created_at",
        "order_number",
    ]
    list_filter = [
        "status",
        ("created_at", admin.DateFieldListFilter),
        ("expires_at", admin.DateFieldListFilter),
    ]
    search_fields = ["title", "seller__username", "buyer__username", "order__number"]
    list_select_related = ["seller", "buyer", "order"]
    date_hierarchy = "created_at"

    @admin.display(description="order", ordering="order__number")
    def order_number(self, offer):
        order = getattr(offer, "order", None)
        return f"#{order.number}" if order else "-"


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ["created_at", "kind", "actor", "data", "message_text"]
    readonly_fields = fields
    ordering = ["created_at", "id"]
    verbose_name_plural = "Timeline"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor", "message")

    @admin.display(description="message in the conversation")
    def message_text(self, event):
        return event.message.body if event.message else "-"


class ReviewInline(ReadOnlyInline):
    model = Review
    fields = ["author", "subject", "rating", "text", "created_at"]
    readonly_fields = fields


class OrderSearchNumber:
    """Numbers are shown as "#FO7K2Q9XB1": a search pasted with its "#" finds the order."""

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, search_term.strip().lstrip("#"))


@admin.register(Order)
class OrderAdmin(OrderSearchNumber, ReadOnlyAdmin):
    list_display = ["number", "title", "buyer", "seller", "price", "status", "due_at", "created_at"]
    list_filter = [
        "status",
        ("created_at", admin.DateFieldListFilter),
        ("completed_at", admin.DateFieldListFilter),
    ]
    search_fields = ["number", "title", "buyer__username", "seller__username"]
    list_select_related = ["buyer", "seller"]
    date_hierarchy = "created_at"
    inlines = [OrderEventInline, ReviewInline]


@admin.register(Review)
class ReviewAdmin(OrderSearchNumber, ReadOnlyAdmin):
    list_display = ["order", "author", "subject", "rating", "created_at"]
    list_filter = ["rating", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["order__number", "author__username", "subject__username", "text"]
    list_select_related = ["order", "author", "subject"]


@admin.register(Call)
class CallAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "seller", "buyer", "status", "starts_at", "url", "created_at"]
    list_filter = ["kind", "status", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["seller__username", "buyer__username", "url"]
    list_select_related = ["seller", "buyer"]


# --- buyers and the Top buyer rule ----------------------------------------------------------


class TopBuyerFilter(admin.SimpleListFilter):
    title = "Top buyer"
    parameter_name = "top_buyer"

    def lookups(self, request, model_admin):
        return [("yes", "Top buyers"), ("no", "Other buyers")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(is_top_buyer=self.value() == "yes")
        return queryset


@admin.register(Buyer)
class BuyerAdmin(ReadOnlyAdmin):
    """Everyone with the buyer role or who has bought something, with their last 365 days."""

    list_display = ["username", "display_name", "orders_completed", "amount_spent", "top_buyer"]
    list_filter = [TopBuyerFilter]
    search_fields = ["username", "profile__display_name"]
    list_select_related = ["profile"]
    fields = ["username", "display_name", "orders_completed", "amount_spent", "top_buyer", "date_joined"]
    readonly_fields = fields

    def get_queryset(self, request):
        # Annotated before ordering: the default order (biggest spend first) needs the annotations.
        buyers = Buyer.objects.filter(
            Q(profile__role=Profile.Role.BUYER) | Exists(Order.objects.filter(buyer=OuterRef("pk")))
        )
        return selectors.with_buyer_standing(buyers).order_by(*self.get_ordering(request))

    def get_ordering(self, request):
        return ["-spent", "username"]

    @admin.display(ordering="profile__display_name")
    def display_name(self, buyer):
        return buyer.profile.display_name

    @admin.display(description="completed orders (365 days)", ordering="completed_orders")
    def orders_completed(self, buyer):
        return buyer.completed_orders

    @admin.display(description="spent (365 days)", ordering="spent")
    def amount_spent(self, buyer):
        return f"${buyer.spent:,.2f}"

    @admin.display(description="Top buyer", boolean=True, ordering="is_top_buyer")
    def top_buyer(self, buyer):
        return buyer.is_top_buyer
