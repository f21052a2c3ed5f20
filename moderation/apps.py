from django.apps import AppConfig


class ModerationConfig(AppConfig):
    """Scanners, held messages, reports and restrictions arrive with the moderation issue."""

    name = "moderation"
