"""A TCP fault proxy: put it between the app and PostgreSQL or Redis, then take the service
"away" without touching the real one (which other people share).

    proxy = FaultProxy("127.0.0.1", 6379).start()   # forwards 127.0.0.1:<proxy.port> -> 6379
    url = proxy.url("redis://127.0.0.1:6379/9")      # the same URL through the proxy
    proxy.down()   # every open connection is reset, new ones are accepted and reset at once
    proxy.up()     # forwards again
    proxy.stop()

It runs its own event loop in a daemon thread, so synchronous tests and asyncio scripts use it
the same way, and forwarding never waits for the caller's loop. While down, the port stays
bound (nobody else can take it) and a connection attempt fails at once, as when the service's
process is gone: clients see "connection reset", never a hang.

`python -m bench.faultproxy --target 127.0.0.1:6379` runs one by hand: Enter toggles it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import struct
import threading
from urllib.parse import urlsplit, urlunsplit

_LINGER_RESET = struct.pack("ii", 1, 0)  # close() sends RST instead of FIN


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    writer.transport.abort()


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1", port: int = 0):
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        self.port = port
        self.is_down = False
        self.connections_accepted = 0
        self.connections_reset = 0
        self._open: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    # ---- control (thread-safe, from any thread or loop) ----------------------------------------

    def start(self) -> FaultProxy:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def serve():
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._listen())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name=f"faultproxy-{self.target[1]}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def down(self) -> None:
        """Reset every open connection; from now on reset new ones as they arrive."""
        self._call(self._down)

    def up(self) -> None:
        self._call(self._up)

    def stop(self) -> None:
        if self._loop is None:
            return
        self._call(self._close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
        self._loop = None

    def url(self, service_url: str) -> str:
        """`service_url` (postgres://… or redis://…) with its host and port replaced by the proxy's."""
        parts = urlsplit(service_url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@" if credentials else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}{self.listen_host}:{self.port}"))

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _call(self, function) -> None:
        if self._loop is None:
            raise RuntimeError("the proxy is not running")
        asyncio.run_coroutine_threadsafe(function(), self._loop).result(10)

    # ---- the loop side -------------------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.listen_host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _down(self) -> None:
        self.is_down = True
        for writer in list(self._open):
            _reset(writer)
            self.connections_reset += 1
        self._open.clear()

    async def _up(self) -> None:
        self.is_down = False

    async def _close(self) -> None:
        await self._down()
        self._server.close()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _accept(self, client_reader, client_writer) -> None:
        self.connections_accepted += 1
        if self.is_down:
            _reset(client_writer)
            self.connections_reset += 1
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(client_writer)
            return
        if self.is_down:  # went down while connecting
            _reset(client_writer)
            _reset(server_writer)
            return
        pair = {client_writer, server_writer}
        self._open |= pair
        try:
            await asyncio.gather(
                self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer)
            )
        finally:
            self._open -= pair
            for writer in pair:
                writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            # One side ended: end both (a half-open pair would keep a pooled connection alive).
            writer.transport.abort()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="host:port of the real service")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free one)")
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    proxy = FaultProxy(host or "127.0.0.1", int(port), port=args.port).start()
    print(f"forwarding 127.0.0.1:{proxy.port} -> {args.target}; Enter toggles down/up, Ctrl-D quits")
    try:
        while input() is not None:
            (proxy.up if proxy.is_down else proxy.down)()
            print("DOWN" if proxy.is_down else "up")
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        proxy.stop()


if __name__ == "__main__":
    main()
