"""Small helpers shared by tests."""

import json

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
