from celery import shared_task

from . import services


@shared_task(name="notifications.fan_out")
def fan_out_task(notification_ids: list[int]) -> None:
    """After commit: email and push for these notifications (each sent once, however often
    this runs)."""
    services.fan_out(notification_ids=notification_ids)


@shared_task(name="notifications.message_digest")
def message_digest_task(recipient_id: int) -> int:
    """A few minutes after an unread message: one email for what is still unread."""
    return services.send_message_digest(recipient_id=recipient_id)


@shared_task(name="notifications.sweep")
def sweep_task() -> int:
    """Beat: re-queue notifications whose fan-out never ran."""
    return services.sweep()
