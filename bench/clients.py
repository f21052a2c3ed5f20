"""The load generators' clients, shared by realtime, storm, soak and retries: a keep-alive HTTP
pool, a websocket client that resumes from its cursor the way the page does
(static/inbox/live.js), the product on N processes, and buyer/seller pairs to drive them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import socket
import struct
import time

from bench.stack import log, make_bench_users, summarize_ns

# ---- A small keep-alive HTTP/1.1 client ---------------------------------------------------------
# httpx costs the generator ~1 ms of CPU a request; on two shared cores that is CPU the servers lose.


class HttpPool:
    """Keep-alive connections to one server, opened on demand up to `limit`."""

    def __init__(self, host: str, port: int, limit: int = 100):
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(limit)

    async def request(
        self, method: str, path: str, token: str, body: bytes = b"", timeout: float = 300
    ) -> tuple[int, bytes]:
        async with self.slots:
            if self.idle:
                try:
                    return await self._exchange(self.idle.pop(), method, path, token, body, timeout)
                except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
                    if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                        raise
                    # The server closed this kept-alive connection while it sat idle, and no
                    # answer began: sent again on a new one, as HTTP clients do. (Our POSTs carry
                    # a client_id, so a request that did arrive is answered with the original.)
            connection = await asyncio.open_connection(self.host, self.port)
            return await self._exchange(connection, method, path, token, body, timeout)

    async def _exchange(self, connection, method, path, token, body, timeout) -> tuple[int, bytes]:
        reader, writer = connection
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        try:
            writer.write(head.encode() + body)
            status, data, keep = await asyncio.wait_for(read_response(reader), timeout)
        except BaseException:
            writer.close()
            raise
        if keep:
            self.idle.append(connection)
        else:
            writer.close()
        return status, data

    def close(self) -> None:
        for _reader, writer in self.idle:
            writer.close()
        self.idle.clear()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    if "content-length" in headers:
        data = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        data = b"".join(parts)
    else:
        data = await reader.read()
        return status, data, False
    return status, data, headers.get("connection", "").lower() != "close"


# ---- Message bodies the moderation scanners let through ------------------------------------------
# Digits written as letters (0 -> a ... 9 -> j): the phone scanner refuses a body with a run of
# digits that reads as a phone number (a ten-digit run tag did, in one run).

DIGITS_AS_LETTERS = str.maketrans("0123456789", "abcdefghij")
LETTERS_AS_DIGITS = str.maketrans("abcdefghij", "0123456789")


def as_letters(value) -> str:
    return str(value).translate(DIGITS_AS_LETTERS)


def from_letters(text: str) -> int:
    return int(text.translate(LETTERS_AS_DIGITS))


# ---- A websocket client that resumes like the page ------------------------------------------------


def ws_url(base_url: str, path: str = "/ws/events/") -> str:
    return base_url.replace("http", "ws", 1) + path


class ResumingClient:
    """One tab's socket, resuming like the page does (static/inbox/live.js): events are applied
    in cursor order; a gap or a reconnect fetches GET /api/v1/events?since=<cursor>; an event
    already applied is dropped. Subclasses watch through on_frame / on_apply / on_duplicate."""

    def __init__(self, user_id: int, username: str, token: str, server: int):
        self.user_id, self.username, self.token, self.server = user_id, username, token, server
        self.cursor: int | None = None
        self.queued: list[dict] = []
        self.catching_up: asyncio.Task | None = None
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.pool: HttpPool | None = None
        self.errors: collections.Counter = collections.Counter()
        self.connects = 0

    # What a subclass records.
    def on_frame(self, event: dict, arrived_ns: int) -> None:
        """Every frame read from the socket, before it is applied or dropped."""

    def on_apply(self, event: dict, via: str) -> None:
        """An event applied (what the page would show), via "socket" or "catch_up"."""

    def on_duplicate(self, event: dict) -> None:
        """An event dropped because its cursor was already applied."""

    async def connect(self, ws_url: str, pool: HttpPool, *, timeout: float = 30) -> int:
        """Open the socket and wait for hello; the connect time in ns. Catches up on a reconnect."""
        import websockets

        started = time.perf_counter_ns()
        ws = await websockets.connect(
            ws_url,
            additional_headers={"Authorization": f"Bearer {self.token}"},
            compression=None,
            ping_interval=None,
            open_timeout=timeout,
            max_queue=None,
        )
        try:
            hello = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        except BaseException:
            cut(ws)
            raise
        elapsed = time.perf_counter_ns() - started
        if hello.get("type") != "hello":
            await ws.close()
            raise RuntimeError(f"first frame was {hello.get('type')!r}, not hello")
        self.ws, self.pool = ws, pool
        self.connects += 1
        self.reader = asyncio.create_task(self._read(ws))
        if self.cursor is None:
            self.cursor = hello["cursor"]
        else:
            self.catch_up()
        return elapsed

    async def keep_connected(
        self, ws_url: str, pool: HttpPool, *, timeout: float = 5, connected: asyncio.Event | None = None
    ) -> None:
        """Stay connected as the page does: after a drop or a failed attempt, connect again after
        min(30 s, 0.5 s x 2^n) with jitter, resuming from the cursor. Runs until cancelled."""
        failures = 0
        while True:
            try:
                await self.connect(ws_url, pool, timeout=timeout)
                failures = 0
                if connected is not None:
                    connected.set()
                await self.reader
                self.errors[f"closed {self.ws.close_code}"] += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.errors[type(exc).__name__] += 1
            self.ws = self.reader = None
            failures += 1
            await asyncio.sleep(min(30.0, 0.5 * 2 ** min(failures, 6)) * (0.5 + random.random() / 2))

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self.reader is not None:
            with contextlib.suppress(BaseException):
                await self.reader
        self.ws = self.reader = None

    async def cut(self) -> None:
        """Drop the connection abruptly: a TCP reset, no closing handshake (a network cut)."""
        if self.ws is not None:
            cut(self.ws)
        if self.reader is not None:
            with contextlib.suppress(BaseException):
                await self.reader
        self.ws = self.reader = None

    async def _read(self, ws) -> None:
        import websockets

        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                arrived = time.perf_counter_ns()
                event = json.loads(raw)
                self.on_frame(event, arrived)
                if event.get("cursor") is not None:
                    self.receive(event)

    def receive(self, event: dict) -> None:
        if self.catching_up is not None:
            self.queued.append(event)
        elif event["cursor"] > self.cursor + 1:
            self.queued.append(event)  # a gap: fetch what is missing
            self.catch_up()
        else:
            self.apply(event, "socket")

    def apply(self, event: dict, via: str) -> None:
        if event["cursor"] <= self.cursor:
            self.on_duplicate(event)
            return
        self.cursor = event["cursor"]
        self.on_apply(event, via)

    def catch_up(self) -> asyncio.Task:
        if self.catching_up is None:
            self.catching_up = asyncio.create_task(self._catch_up())
        return self.catching_up

    async def _catch_up(self) -> None:
        failed = True
        try:
            while True:
                status, data = await self.pool.request(
                    "GET", f"/api/v1/events?since={self.cursor}", self.token
                )
                if status != 200:
                    self.errors[f"events {status}"] += 1
                    return
                page = json.loads(data)
                for event in page["items"]:
                    self.apply(event, "catch_up")
                if page["next_cursor"] is None:
                    failed = False
                    return
        except Exception as exc:
            self.errors[type(exc).__name__] += 1
        finally:
            self.catching_up = None
            # As live.js: what came meanwhile is applied up to a gap; past one it waits for the
            # next fetch (applied now, the cursor would move past events never fetched).
            queued, self.queued = sorted(self.queued, key=lambda e: e["cursor"]), []
            for event in queued:
                if event["cursor"] > self.cursor + 1:
                    self.queued.append(event)
                else:
                    self.apply(event, "socket")
            if self.queued:
                asyncio.get_running_loop().call_later(2 if failed else 0, self.catch_up)


def cut(ws) -> None:
    """Reset a websocket's TCP connection (SO_LINGER 0, then abort): the peer sees a reset."""
    transport = ws.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


# ---- The product on N processes --------------------------------------------------------------------


class Deployment:
    """The product on N server processes, with one HTTP pool per process."""

    def __init__(self, servers: dict):
        self.names = list(servers)
        self.urls = [url for url, _process in servers.values()]
        self.pids = {name: process.pid for name, (_url, process) in servers.items()}
        self.processes = [process for _url, process in servers.values()]
        self.pools = []
        for url in self.urls:
            host, port = url.removeprefix("http://").split(":")
            self.pools.append(HttpPool(host, int(port)))

    def close(self) -> None:
        for pool in self.pools:
            pool.close()

    def route(self, client: ResumingClient) -> tuple[str, HttpPool]:
        """The websocket URL and the HTTP pool of the client's server."""
        index = client.server % len(self.urls)
        return ws_url(self.urls[index]), self.pools[index]


async def connect_clients(
    deployment: Deployment, clients: list, *, timeout: float = 30, at_once: int | None = None
) -> dict:
    """All clients at once (a storm), or `at_once` at a time: connect time per client, failures,
    time to the last hello."""
    started = time.perf_counter_ns()
    slots = asyncio.Semaphore(at_once or len(clients) or 1)

    async def one(client: ResumingClient):
        url, pool = deployment.route(client)
        async with slots:
            return await client.connect(url, pool, timeout=timeout)

    results = await asyncio.gather(*(one(c) for c in clients), return_exceptions=True)
    total = time.perf_counter_ns() - started
    times = [r for r in results if isinstance(r, int)]
    failures = collections.Counter(type(r).__name__ for r in results if isinstance(r, BaseException))
    return {
        "clients": len(clients),
        "connected": len(times),
        "failures": dict(failures),
        "all_seconds": round(total / 1e9, 3),
        "connect_ms": summarize_ns(times),
    }


async def close_clients(clients: list) -> None:
    await asyncio.gather(*(c.close() for c in clients))


# ---- Users and conversations ------------------------------------------------------------------------


def create_pairs(count: int, run_tag: str, *, prefix: str = "rt") -> list[tuple[dict, dict, int]]:
    """`count` buyer/seller pairs, each with a conversation the buyer opened (sellers cannot).
    Needs setup_django() first."""
    from datetime import timedelta

    from django.utils import timezone

    from inbox import services
    from marketplace.accounts.models import User

    buyers = make_bench_users(count, run_tag, prefix=f"{prefix}b")
    sellers = make_bench_users(count, run_tag, prefix=f"{prefix}s", seller=True)
    # Old accounts: the new-account anti-spam limits would hold a benchmark's bursts.
    joined = timezone.now() - timedelta(days=30)
    User.objects.filter(pk__in=[u.pk for u, _t in buyers + sellers]).update(date_joined=joined)
    out = []
    for index, ((buyer, buyer_token), (seller, seller_token)) in enumerate(zip(buyers, sellers, strict=True)):
        buyer.date_joined = joined
        conversation, _message, _created = services.start_conversation(
            sender=buyer, recipient_username=seller.username, body="Hello, is this still available?"
        )
        out.append(
            (
                {"id": buyer.pk, "username": buyer.username, "token": buyer_token},
                {"id": seller.pk, "username": seller.username, "token": seller_token},
                conversation.pk,
            )
        )
        if count >= 1000 and (index + 1) % 1000 == 0:
            log(f"created {index + 1}/{count} pairs")
    return out
