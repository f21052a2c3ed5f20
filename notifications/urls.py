from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("", views.index, name="index"),
    path("bell/", views.bell, name="bell"),
    path("<int:notification_id>/open/", views.open_notification, name="open"),
    path("<int:notification_id>/read/", views.mark_read, name="read"),
    path("read-all/", views.mark_all_read, name="read-all"),
    path("settings/", views.settings_page, name="settings"),
    path("push/subscribe/", views.push_subscribe, name="push-subscribe"),
    path("push/unsubscribe/", views.push_unsubscribe, name="push-unsubscribe"),
    path("sw.js", views.service_worker, name="service-worker"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
