from celery import shared_task

from . import services


@shared_task(name="orders.expire_offers")
def expire_offers_task() -> int:
    """Beat: pending custom offers past their expiry become expired, and their cards say so."""
    return services.expire_offers()
