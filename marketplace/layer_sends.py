"""Channel-layer sends from synchronous code: an outbox publishing after a commit, a typing push.

`async_to_sync` would run them on the server's own event loop, which serves every websocket of
the process, through that loop's one Redis pub/sub connection (channels_redis keeps one per
event loop, and serialises publish, subscribe and unsubscribe on it behind one lock). In a
reconnect storm each publish waited 2-4 s there, holding its request's thread and database
connection until the pool ran dry (docs/RELIABILITY.md, "Reconnect storm"). With the Redis
pub/sub layer, sends therefore go through an event loop of their own, in a thread of their own,
with their own Redis connection. Other layers (the in-memory one of development and tests keeps
its queues on the server's loop) are sent to as before.
"""

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable

from asgiref.sync import async_to_sync
from channels_redis.pubsub import RedisPubSubChannelLayer

SEND_TIMEOUT_SECONDS = 10

_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_starting = threading.Lock()


def run_layer_sends(layer, send_all: Callable[[], Awaitable[None]]) -> None:
    """Run `send_all` (a coroutine function sending to `layer`) to completion; its exception,
    or TimeoutError after SEND_TIMEOUT_SECONDS, is raised here."""
    if not isinstance(layer, RedisPubSubChannelLayer):
        async_to_sync(send_all)()
        return
    future = asyncio.run_coroutine_threadsafe(send_all(), _sending_loop())
    try:
        future.result(timeout=SEND_TIMEOUT_SECONDS)
    except TimeoutError:
        future.cancel()
        raise


def _sending_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _starting:
        # A forked child (a Celery prefork worker) has the parent's loop object but not its thread.
        if _loop is None or _loop_pid != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="channel-layer-sends", daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
    return _loop
