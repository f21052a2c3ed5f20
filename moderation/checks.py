"""Start-up checks of the moderation settings: a typo in a scanner path or in the ladder is
reported by `manage.py check` (and at server start) instead of surfacing when someone writes."""

from django.conf import settings
from django.core.checks import Error, register
from django.utils.module_loading import import_string

from .models import Restriction


@register()
def moderation_settings(app_configs, **kwargs):
    errors = []
    for path in settings.MODERATION_SCANNERS:
        try:
            scanner = import_string(path)
        except ImportError as exc:
            errors.append(
                Error(f"MODERATION_SCANNERS: cannot import {path!r} ({exc}).", id="moderation.E001")
            )
            continue
        if not callable(scanner):
            errors.append(Error(f"MODERATION_SCANNERS: {path!r} is not callable.", id="moderation.E001"))
    for step in settings.MODERATION_LIMIT_LADDER:
        kind, _, hours = step.partition(":")
        if kind not in Restriction.Kind.values or (hours and not hours.isdigit()):
            errors.append(
                Error(
                    f"MODERATION_LIMIT_LADDER: {step!r} is not a step.",
                    hint='Use "notice", "warning", "suspension:<hours>" or "suspension" (permanent).',
                    id="moderation.E002",
                )
            )
    if not settings.MODERATION_LIMIT_LADDER:
        errors.append(Error("MODERATION_LIMIT_LADDER is empty.", id="moderation.E002"))
    return errors
