from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """The bell, per-kind and per-channel preferences (in-app, email, Web Push), and the Celery
    fan-out with its digest and sweep."""

    name = "notifications"
