from celery import shared_task

from . import services


@shared_task(name="inbox.prune_event_log")
def prune_event_log_task() -> int:
    """Beat: drop events older than EVENT_LOG_RETENTION_DAYS."""
    return services.prune_event_log()


@shared_task(name="inbox.record_for_response_figures")
def record_for_response_figures_task(message_id: int) -> None:
    """After each delivered message: keep the response obligations current."""
    services.record_delivered_message(message_id=message_id)


@shared_task(name="inbox.recompute_response_figures")
def recompute_response_figures_task() -> int:
    """Beat: rebuild every seller's obligations from the messages; returns how many differed."""
    return sum(result.changed for result in services.rebuild_all_obligations())


@shared_task(name="inbox.send_auto_reply")
def send_auto_reply_task(message_id: int) -> None:
    """After a buyer's first contact is delivered: the seller's auto-reply, if it is on."""
    services.send_auto_reply(trigger_message_id=message_id)
