"""Small helpers shared by tests."""

import asyncio
import json

from asgiref.sync import async_to_sync

from inbox.events import user_group
from inbox.models import Event


def logged_events(user, *, event_type: str | None = None) -> list[dict]:
    """The user's event log as clients receive it, oldest first."""
    events = Event.objects.filter(user=user).order_by("cursor")
    if event_type:
        events = events.filter(type=event_type)
    return [event.as_dict() for event in events]


async def receive_until(ws, event_type: str, *, timeout: float = 5.0, match=None) -> dict:
    """Read frames from a `websockets` client until one of `event_type` (and `match`) arrives."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {event_type} event within {timeout}s")
        frame = json.loads(await asyncio.wait_for(ws.recv(), remaining))
        if frame.get("type") == event_type and (match is None or match(frame)):
            return frame


def listen(layer, user) -> str:
    """A channel in the user's group, as an open tab of theirs would have."""
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(user.pk), channel)
    return channel


def received(layer, channel, *, wait: float = 0.1) -> list[dict]:
    """Every event pushed to the channel so far (waits `wait` seconds for more)."""

    async def drain():
        events = []
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(channel), wait)
            except TimeoutError:
                return events
            events.append(message["event"])

    return async_to_sync(drain)()
