"""Who is online: a count of open sockets per user in the cache (Redis in production).

Each socket refreshes the key on its heartbeat; if a server dies without saying goodbye, the
key expires after PRESENCE_TTL_SECONDS and the user reads as offline.
"""

from django.conf import settings
from django.core.cache import cache


def _key(user_id: int) -> str:
    return f"presence:{user_id}"


async def socket_opened(user_id: int) -> bool:
    """Count one more socket; True when the user just came online."""
    ttl = settings.PRESENCE_TTL_SECONDS
    if await cache.aadd(_key(user_id), 1, timeout=ttl):
        return True
    try:
        count = await cache.aincr(_key(user_id))
    except ValueError:  # expired between the two calls
        await cache.aset(_key(user_id), 1, timeout=ttl)
        return True
    await cache.atouch(_key(user_id), ttl)
    return count == 1


async def socket_closed(user_id: int) -> bool:
    """Count one socket less; True when it was the user's last one."""
    try:
        count = await cache.adecr(_key(user_id))
    except ValueError:  # already expired: nobody saw them online
        return False
    if count <= 0:
        await cache.adelete(_key(user_id))
        return True
    return False


async def heartbeat(user_id: int) -> None:
    if not await cache.atouch(_key(user_id), settings.PRESENCE_TTL_SECONDS):
        await cache.aadd(_key(user_id), 1, timeout=settings.PRESENCE_TTL_SECONDS)


def online_user_ids(user_ids) -> set[int]:
    keys = {_key(user_id): user_id for user_id in user_ids}
    found = cache.get_many(list(keys))
    return {keys[key] for key, count in found.items() if count and count > 0}
