"""The one websocket a tab keeps open: /ws/events/.

A pipe: authenticate once on connect, join the user's group, forward events. Writes go over
HTTP to the services. Frames from the client: {"type": "ping"} and
{"type": "presence.watch", "user_ids": [...]}; anything else gets an error frame.
"""

import json

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from . import presence
from .events import presence_group, user_group
from .selectors import head_cursor

MAX_FRAME_CHARS = 4096
MAX_WATCHED_USERS = 50
CLOSE_UNAUTHENTICATED = 4401
MAX_USER_ID = 2**63 - 1  # a BigAutoField; larger ids would make group names the layer rejects


def _credential_of(scope) -> str | None:
    """What this socket logged in with: a bearer token or a session."""
    token = getattr(scope["user"], "api_token", None)
    if token is not None:
        return f"token:{token.pk}"
    session = scope.get("session")
    if session is not None and session.session_key:
        return f"session:{session.session_key}"
    return None


def _open_socket(user_id: int) -> tuple[int, bool]:
    """hello's cursor (read after joining the group, so nothing falls between the two) and
    whether the user just came online: one trip to the sync thread, not four."""
    return head_cursor(user_id=user_id), presence.count_socket_opened(user_id)


class EventsConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED, reason="authentication required")
            return
        self.user_id = user.pk
        self.username = user.username
        self.credential = _credential_of(self.scope)
        self.watched: set[int] = set()
        await self.channel_layer.group_add(user_group(self.user_id), self.channel_name)
        await self.accept()
        cursor, came_online = await database_sync_to_async(_open_socket)(self.user_id)
        await self._send({"type": "hello", "cursor": cursor, "user": self.username})
        if came_online:
            await self._announce_presence(online=True)

    async def disconnect(self, code):
        if not hasattr(self, "user_id"):
            return
        await self.channel_layer.group_discard(user_group(self.user_id), self.channel_name)
        for watched_id in self.watched:
            await self.channel_layer.group_discard(presence_group(watched_id), self.channel_name)
        if await presence.socket_closed(self.user_id):
            await self._announce_presence(online=False)

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None or len(text_data) > MAX_FRAME_CHARS:
            await self._error("bad_frame", f"Send JSON text frames of at most {MAX_FRAME_CHARS} characters.")
            return
        try:
            frame = json.loads(text_data)
        except (ValueError, RecursionError):  # RecursionError: deeply nested arrays fit in 4096 chars
            frame = None
        if not isinstance(frame, dict):
            await self._error("bad_frame", "Frames must be JSON objects with a 'type'.")
            return
        frame_type = frame.get("type")
        if frame_type == "ping":
            await presence.heartbeat(self.user_id)
            await self._send({"type": "pong", "cursor": None})
        elif frame_type == "presence.watch":
            await self._watch_presence(frame.get("user_ids"))
        else:
            await self._error("unknown_type", "Known frame types: ping, presence.watch.")

    async def event_forward(self, message):
        await self.send(text_data=json.dumps(message["event"]))

    async def sockets_close(self, message):
        """Logged out, token revoked or account deactivated: this socket's access is gone."""
        if message.get("credential") in (None, self.credential):
            await self.close(code=CLOSE_UNAUTHENTICATED, reason="access revoked")

    async def _watch_presence(self, user_ids):
        if not isinstance(user_ids, list) or not all(
            type(uid) is int and 0 < uid <= MAX_USER_ID for uid in user_ids
        ):
            await self._error("bad_frame", "presence.watch takes user_ids, a list of user ids.")
            return
        new_ids = [uid for uid in dict.fromkeys(user_ids) if uid not in self.watched]
        if len(self.watched) + len(new_ids) > MAX_WATCHED_USERS:
            await self._error("too_many", f"Watch at most {MAX_WATCHED_USERS} users per socket.")
            return
        for uid in new_ids:
            await self.channel_layer.group_add(presence_group(uid), self.channel_name)
            self.watched.add(uid)
        online = await sync_to_async(presence.online_user_ids)(user_ids)
        for uid in dict.fromkeys(user_ids):
            await self._send({"type": "presence", "cursor": None, "user_id": uid, "online": uid in online})

    async def _announce_presence(self, *, online: bool):
        event = {
            "type": "presence",
            "cursor": None,
            "user_id": self.user_id,
            "user": self.username,
            "online": online,
        }
        await self.channel_layer.group_send(
            presence_group(self.user_id), {"type": "event.forward", "event": event}
        )

    async def _send(self, event: dict):
        await self.send(text_data=json.dumps(event))

    async def _error(self, code: str, detail: str):
        await self._send({"type": "error", "cursor": None, "error": code, "detail": detail})
