from django.contrib import admin
from django.urls import include, path

from marketplace.api import api
from marketplace.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("healthz", healthz, name="healthz"),
    path("accounts/", include("marketplace.accounts.urls")),
    path("inbox/", include("inbox.urls")),
    path("notifications/", include("notifications.urls")),
    path("seller/", include("sellers.urls")),
    path("files/", include("attachments.urls")),
    path("", include("orders.urls")),
]
