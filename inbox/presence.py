"""Who is online: a count of open sockets per user in the cache (Redis in production).

Each socket refreshes the key on its heartbeat; if a server dies without saying goodbye, the
key expires after PRESENCE_TTL_SECONDS and the user reads as offline.

Django's async cache methods are each a trip to the sync thread; the async functions here
make one trip for the whole count.
"""

import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


def _key(user_id: int) -> str:
    return f"presence:{user_id}"


def count_socket_opened(user_id: int) -> bool:
    """Count one more socket; True when the user just came online."""
    ttl = settings.PRESENCE_TTL_SECONDS
    if cache.add(_key(user_id), 1, timeout=ttl):
        return True
    try:
        count = cache.incr(_key(user_id))
    except ValueError:  # expired between the two calls
        cache.set(_key(user_id), 1, timeout=ttl)
        return True
    cache.touch(_key(user_id), ttl)
    return count == 1


def count_socket_closed(user_id: int) -> bool:
    """Count one socket less; True when it was the user's last one."""
    try:
        count = cache.decr(_key(user_id))
    except ValueError:  # already expired: nobody saw them online
        return False
    if count <= 0:
        cache.delete(_key(user_id))
        return True
    return False


def refresh(user_id: int) -> None:
    if not cache.touch(_key(user_id), settings.PRESENCE_TTL_SECONDS):
        cache.add(_key(user_id), 1, timeout=settings.PRESENCE_TTL_SECONDS)


async def socket_opened(user_id: int) -> bool:
    return await sync_to_async(count_socket_opened)(user_id)


async def socket_closed(user_id: int) -> bool:
    return await sync_to_async(count_socket_closed)(user_id)


async def heartbeat(user_id: int) -> None:
    await sync_to_async(refresh)(user_id)


def online_user_ids(user_ids) -> set[int]:
    """Who of `user_ids` is online; nobody, when the cache is unreachable (pages still render;
    a new message notifies: better told twice than never)."""
    keys = {_key(user_id): user_id for user_id in user_ids}
    try:
        found = cache.get_many(list(keys))
    except Exception:
        logger.warning("presence unknown: the cache is unavailable")
        return set()
    return {keys[key] for key, count in found.items() if count and count > 0}
