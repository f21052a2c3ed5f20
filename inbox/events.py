"""The per-user event log and its real-time fast path.

Services append events inside their transaction; the pushes to the users' channel-layer groups
are written to the outbox in the same transaction and published after the commit. The channel
layer itself is at-most-once: the log is the truth, and clients fill gaps with
GET /api/v1/events?since=<cursor>.
"""

import logging

from channels.layers import get_channel_layer
from django.db import connection

from marketplace.layer_sends import run_layer_sends
from outbox.services import enqueue_group_sends

from .models import Event, EventLogHead

logger = logging.getLogger(__name__)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def presence_group(user_id: int) -> str:
    return f"presence.{user_id}"


def _allocate_cursor(user_id: int) -> int:
    """Take the user's next cursor, holding their head row locked until commit."""
    table = EventLogHead._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, last_cursor, pruned_through) VALUES (%s, 1, 0) "  # noqa: S608
            f"ON CONFLICT (user_id) DO UPDATE SET last_cursor = {table}.last_cursor + 1 "
            "RETURNING last_cursor",
            [user_id],
        )
        return cursor.fetchone()[0]


def append_events(entries: list[tuple[int, str, dict]]) -> list[Event]:
    """Append (user_id, type, payload) entries to their users' logs; their pushes go out through
    the outbox.

    Must run inside the caller's transaction. Head rows are locked in user-id order so two
    transactions touching the same users cannot deadlock.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("append_events must run inside the writing transaction")
    events = []
    for user_id, event_type, payload in sorted(entries, key=lambda entry: entry[0]):
        cursor = _allocate_cursor(user_id)
        events.append(Event(user_id=user_id, cursor=cursor, type=event_type, payload=payload))
    Event.objects.bulk_create(events)
    enqueue_group_sends(
        [(user_group(event.user_id), {"type": "event.forward", "event": event.as_dict()}) for event in events]
    )
    return events


def push_live(pushes: list[tuple[int, dict]]) -> None:
    """Send events that are not logged (typing, presence) to open sockets, now. Failures are
    logged, never raised: these are live only, and a missed one costs nothing."""
    layer = get_channel_layer()
    if layer is None:
        return

    async def send_all():
        for user_id, event in pushes:
            await layer.group_send(user_group(user_id), {"type": "event.forward", "event": event})

    try:
        run_layer_sends(layer, send_all)
    except Exception:
        logger.exception("real-time push failed; clients will catch up from the event log")


def close_sockets(user_id: int, *, credential: str | None = None) -> None:
    """Close the user's open sockets that authenticated with `credential` ("session:<key>",
    "token:<id>"), or all of them when it is None. Through the outbox, like every push."""
    enqueue_group_sends([(user_group(user_id), {"type": "sockets.close", "credential": credential})])


def push_ephemeral(user_id: int, event: dict) -> None:
    """Typing and presence: live only, never logged, so they carry no cursor."""
    push_live([(user_id, {**event, "cursor": None})])
