"""Counters that expire: in the Django cache, which is Redis in production, so every process
counts together."""

from django.core.cache import cache


def count_up(key: str, *, window_seconds: int) -> int:
    """Add one to the counter `key`, which starts at 1 and is forgotten `window_seconds` after
    its first count; return the new value."""
    if cache.add(key, 1, timeout=window_seconds):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # it expired between the two calls
        cache.set(key, 1, timeout=window_seconds)
        return 1
