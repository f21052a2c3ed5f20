"""Counters that expire: in the Django cache, which is Redis in production, so every process
counts together."""

import logging

from django.core.cache import cache

logger = logging.getLogger(__name__)


def count_up(key: str, *, window_seconds: int) -> int:
    """Add one to the counter `key`, which starts at 1 and is forgotten `window_seconds` after
    its first count; return the new value. With the cache unreachable nothing is counted and 0
    comes back: the limits fail open, as marketplace/ratelimit.py does, so people keep writing
    while Redis is down."""
    try:
        if cache.add(key, 1, timeout=window_seconds):
            return 1
        try:
            return cache.incr(key)
        except ValueError:  # it expired between the two calls
            cache.set(key, 1, timeout=window_seconds)
            return 1
    except Exception:  # whatever the cache backend raises when it is unreachable
        logger.warning("moderation counter %s not counted: the cache is unavailable", key.rsplit(":", 1)[0])
        return 0


def read(key: str) -> int:
    """The counter's value; 0 when it is not set, or when the cache is unreachable (fails open)."""
    try:
        return cache.get(key) or 0
    except Exception:
        logger.warning("moderation counter %s not read: the cache is unavailable", key.rsplit(":", 1)[0])
        return 0
