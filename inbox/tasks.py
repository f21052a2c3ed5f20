from celery import shared_task

from . import services


@shared_task(name="inbox.prune_event_log")
def prune_event_log_task() -> int:
    """Beat: drop events older than EVENT_LOG_RETENTION_DAYS."""
    return services.prune_event_log()
