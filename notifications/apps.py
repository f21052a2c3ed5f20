from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """The bell, per-channel preferences and Celery fan-out arrive with the notifications issue."""

    name = "notifications"
