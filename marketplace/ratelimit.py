"""Rate limits counted in the cache (Redis in production, so every process counts together).

A limit allows `limit` hits per subject in each fixed window of `window` seconds, aligned on
the clock (a window of 60 s runs from :00 to :59 of each minute): at most twice the limit can land
in any `window` seconds that straddle a boundary. A hit is one atomic INCR on a key that
names the window, so concurrent requests never slip past the limit together, and the key
expires by itself after its window.

If the cache cannot be reached, the limiter fails open: the action goes ahead and a warning
is logged. Sends and logins must keep working while Redis is down; the limits are back as soon
as it is.
"""

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from marketplace.errors import DomainError

logger = logging.getLogger(__name__)


class RateLimited(DomainError):
    """429, with how long to wait: in the body (`retry_after`) and the Retry-After header."""

    status = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None):
        super().__init__(detail, code=code, retry_after=retry_after)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


@dataclass(frozen=True)
class Hit:
    allowed: bool
    count: int  # hits in this window so far, this one included (0 when the cache is down)
    retry_after: int  # seconds until the window ends


def subject_key(text: str) -> str:
    """A cache-safe stand-in for free text (a username may hold spaces or any letter)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def wait_phrase(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes"


@dataclass(frozen=True)
class Limit:
    """`limit_setting` and `window_setting` name settings, read at each hit (tests change them)."""

    name: str
    limit_setting: str
    window_setting: str

    @property
    def limit(self) -> int:
        return getattr(settings, self.limit_setting)

    @property
    def window(self) -> int:
        return max(1, getattr(settings, self.window_setting))

    def _key(self, subject: str, now: float) -> tuple[str, int]:
        window = self.window
        index = int(now // window)
        retry_after = max(1, math.ceil((index + 1) * window - now))
        return f"{settings.RATE_LIMIT_KEY_PREFIX}:{self.name}:{subject}:{window}:{index}", retry_after

    def hit(self, subject) -> Hit:
        """Count one hit for `subject`; allowed while the window's count is at most the limit.
        A limit of 0 or less turns the limit off."""
        if self.limit <= 0:
            return Hit(True, 0, 0)
        key, retry_after = self._key(str(subject), time.time())
        try:
            # add() starts the window's counter; incr() is Redis's atomic INCR.
            count = 1 if cache.add(key, 1, timeout=self.window + 5) else cache.incr(key)
        except ValueError:  # it expired between the two calls: a new window
            count = 1
            self._safely(cache.set, key, 1, timeout=self.window + 5)
        except Exception:  # whatever the cache backend raises when it is unreachable
            logger.warning("rate limit %s not counted: the cache is unavailable", self.name, exc_info=True)
            return Hit(True, 0, retry_after)
        return Hit(count <= self.limit, count, retry_after)

    def give_back(self, subject) -> None:
        """Undo one hit of the current window (an attempt that turned out not to count)."""
        key, _retry_after = self._key(str(subject), time.time())
        self._safely(cache.decr, key)

    def reset(self, subject) -> None:
        key, _retry_after = self._key(str(subject), time.time())
        self._safely(cache.delete, key)

    def _safely(self, operation, *args, **kwargs) -> None:
        try:
            operation(*args, **kwargs)
        except ValueError:  # decr of a key that expired meanwhile: nothing to undo
            pass
        except Exception:
            logger.warning("rate limit %s not updated: the cache is unavailable", self.name, exc_info=True)
