"""A websocket frame far larger than any client sends is refused by daphne, not buffered, and the
server carries on."""

import asyncio
import json
from pathlib import Path

import pytest
import websockets
import yaml
from asgiref.sync import sync_to_async
from django.conf import settings

from tests.factories import bearer_headers
from tests.helpers import receive_until

PROJECT_DIR = Path(__file__).resolve().parents[2]


def _token(user) -> str:
    return bearer_headers(user)["HTTP_AUTHORIZATION"].split(" ", 1)[1]


async def _socket(base_url: str, token: str):
    return await websockets.connect(
        base_url.replace("http", "ws", 1) + "/ws/events/",
        additional_headers={"Authorization": f"Bearer {token}", "Origin": base_url},
        open_timeout=5,
        max_size=None,
    )


async def _closed_without_answer(socket, frame: str) -> bool:
    """Send one frame: True if the server drops the socket instead of answering it. (Autobahn,
    under daphne, drops the TCP connection at once when a frame header announces too much.)"""
    try:
        await socket.send(frame)
        async with asyncio.timeout(5):
            while True:
                if json.loads(await socket.recv())["type"] in ("pong", "error"):
                    return False
    except websockets.ConnectionClosed:
        return True


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_sync_thread_connections")
async def test_oversized_frames_close_the_socket_and_the_server_stays_up(daphne_servers, buyer):
    server = await sync_to_async(daphne_servers.start)()
    token = await sync_to_async(_token)(buyer)

    # Over our 64 KiB limit but under daphne's default of 1 MiB: proves the explicit limit applies.
    socket = await _socket(server, token)
    await receive_until(socket, "hello")
    padding = "x" * (settings.DAPHNE_WEBSOCKET_MAX_FRAME_SIZE + 1)
    # (Were it let through, the consumer would answer with a "bad_frame" error.)
    assert await _closed_without_answer(socket, json.dumps({"type": "ping", "pad": padding}))

    socket = await _socket(server, token)
    await receive_until(socket, "hello")
    assert await _closed_without_answer(socket, "x" * (2 * 1024 * 1024))

    # A normal client still connects and is answered.
    socket = await _socket(server, token)
    await receive_until(socket, "hello")
    await socket.send(json.dumps({"type": "ping"}))
    assert (await receive_until(socket, "pong"))["type"] == "pong"
    await socket.close()


def test_the_limit_is_far_above_any_frame_our_clients_send_and_below_daphnes_default():
    from inbox.consumers import MAX_FRAME_CHARS

    assert MAX_FRAME_CHARS * 4 <= settings.DAPHNE_WEBSOCKET_MAX_FRAME_SIZE < 1024 * 1024  # 4: UTF-8's widest
    assert settings.DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE == settings.DAPHNE_WEBSOCKET_MAX_FRAME_SIZE


def _limit_args(command: list[str]) -> dict[str, int]:
    return {
        flag: int(command[command.index(flag) + 1])
        for flag in ("--websocket-max-message-size", "--websocket-max-frame-size")
        if flag in command
    }


def test_production_daphne_is_started_with_the_limit():
    expected = {
        "--websocket-max-message-size": settings.DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE,
        "--websocket-max-frame-size": settings.DAPHNE_WEBSOCKET_MAX_FRAME_SIZE,
    }
    compose = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())
    dockerfile_cmd = next(
        line for line in (PROJECT_DIR / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")
    )

    assert _limit_args(compose["services"]["web"]["command"]) == expected
    assert _limit_args(json.loads(dockerfile_cmd.removeprefix("CMD "))) == expected
