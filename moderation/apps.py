from django.apps import AppConfig


class ModerationConfig(AppConfig):
    """Scanners on every message, held messages and their review, reports, and the messaging
    restrictions (limits, warnings, suspensions)."""

    name = "moderation"

    def ready(self):
        from . import checks  # noqa: F401 -- registers the settings checks
