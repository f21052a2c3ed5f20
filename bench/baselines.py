"""The bare stack, measured first in every run: what Redis, the channel layer, daphne,
PostgreSQL and a Redis queue cost on this machine today, with nothing of ours on top.

Fills `ctx.baselines` (the other benchmarks divide by these) with exactly:
redis_ping_ms, layer_hop_ms {"pubsub", "core"}, ws_echo_ms, db_insert_ms (summarize_ns dicts)
and queue_per_s (a float). A baseline that fails is left out, and its row says why.

The layer hop's receiver is a child process: `python -m bench.baselines --layer-receiver
<backend> <redis_url> <prefix> <group>`.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import sys
import threading
import time
import traceback
import uuid

from bench.stack import PYTHON, Context, Result, Row, log, start_servers, summarize_ns

NAME = "baselines"
TITLE = "The bare stack: Redis round trip, channel-layer hop, daphne echo, INSERT+COMMIT, Redis queue"

LAYERS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}
HOP_GROUP = "bench.hop"
SETUP_COMMANDS = {"SELECT", "CLIENT", "HELLO", "AUTH"}
CAPACITY_PROBE = 150  # group messages sent to a channel nobody reads (core capacity is 100)

# The message table's own INSERT: every column the model requires, all indexes and constraints.
INSERT_MESSAGE_SQL = (
    "INSERT INTO inbox_message (conversation_id, sender_id, body, status, client_id, created_at, "
    "edited_at, kind, card, moderation_findings, moderation_reason, is_automatic) "
    "VALUES ({p}, {p}, {p}, 'visible', {p}, {p}, NULL, 'text', '{{}}', '[]', '', false) RETURNING id"
)
# A frame about the size of a message.created event.
SAMPLE_BODY = "Hi! Could you tell me whether the order can arrive before Friday? " * 3


def samples(ctx: Context) -> tuple[int, int]:
    """(measured, warm-up) per latency baseline."""
    return (100, 20) if ctx.quick else (1000, 100)


def make_layer(backend: str, redis_url: str, prefix: str):
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    layer_class = {"pubsub": RedisPubSubChannelLayer, "core": RedisChannelLayer}[backend]
    return layer_class(hosts=[redis_url], prefix=prefix)


# ---- B-redis ----------------------------------------------------------------------------------


async def measure_redis_ping(redis_url: str, count: int, warmup: int) -> dict:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_url)
    timings = []
    try:
        for i in range(warmup + count):
            started = time.perf_counter_ns()
            await client.ping()
            if i >= warmup:
                timings.append(time.perf_counter_ns() - started)
    finally:
        await client.aclose()
    return summarize_ns(timings)


# ---- B-layer ----------------------------------------------------------------------------------


async def layer_receiver_main(backend: str, redis_url: str, prefix: str, group: str) -> None:
    """Child process: join the group, print each hop's one-way time (CLOCK_MONOTONIC is one
    clock for every process on the host) until told to stop."""
    layer = make_layer(backend, redis_url, prefix)
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    print("ready", flush=True)
    while True:
        message = await layer.receive(channel)
        received = time.monotonic_ns()
        if message.get("type") == "hop.stop":
            break
        print(f"hop {message['seq']} {received - message['sent_ns']}", flush=True)
    await layer.flush()


class LayerReceiver:
    """The child process and its stdout, read line by line in a thread."""

    def __init__(self, ctx: Context, backend: str, prefix: str):
        self.name = f"layer-receiver-{backend}"
        self.ctx = ctx
        argv = [
            PYTHON,
            "-m",
            "bench.baselines",
            "--layer-receiver",
            backend,
            ctx.redis_url,
            prefix,
            HOP_GROUP,
        ]
        self.process = ctx.group.start(self.name, argv, ctx.env, capture_stdout=True)

    async def readline(self, timeout: float) -> str:
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), timeout)
        if not line:
            raise RuntimeError(f"{self.name} exited:\n{self.ctx.group.log_tail(self.name)}")
        return line.decode().strip()

    async def wait_ready(self) -> None:
        if await self.readline(30) != "ready":
            raise RuntimeError(f"{self.name} did not start:\n{self.ctx.group.log_tail(self.name)}")


async def measure_layer_hop(layer, receiver: LayerReceiver, count: int, warmup: int) -> dict:
    """group_send here, receive() in the child: one hop at a time, one way."""
    one_way, lost = [], 0
    for seq in range(warmup + count):
        await layer.group_send(HOP_GROUP, {"type": "hop", "seq": seq, "sent_ns": time.monotonic_ns()})
        try:
            line = await receiver.readline(5)
        except TimeoutError:
            lost += 1
            continue
        _hop, got_seq, hop_ns = line.split()
        if int(got_seq) != seq:
            raise RuntimeError(f"{receiver.name}: hop {got_seq} arrived while waiting for {seq}")
        if seq >= warmup:
            one_way.append(int(hop_ns))
    return {"one_way_ms": summarize_ns(one_way), "lost": lost}


class RedisMonitor:
    """MONITOR on the server, keeping the commands of one database index: what a hop costs in
    Redis commands. Other databases (other runs on the same server) are left out."""

    def __init__(self, redis_url: str):
        import redis

        self.client = redis.Redis.from_url(redis_url)
        self.db = self.client.connection_pool.connection_kwargs.get("db", 0)
        self.token = uuid.uuid4().hex
        self.started = threading.Event()
        self.commands: list[dict] = []
        self.thread = threading.Thread(target=self._listen, daemon=True)

    def _listen(self) -> None:
        with self.client.monitor() as monitor:
            self.client.echo(f"start-{self.token}")
            for command in monitor.listen():
                text = command["command"]
                if text.startswith("ECHO") and self.token in text:
                    if text.endswith(f"stop-{self.token}"):
                        return
                    self.started.set()
                    continue
                if command["db"] == self.db:
                    self.commands.append(command)

    async def __aenter__(self):
        self.thread.start()
        if not await asyncio.to_thread(self.started.wait, 10):
            raise RuntimeError("MONITOR did not start")
        return self

    async def __aexit__(self, *exc):
        await asyncio.to_thread(self.client.echo, f"stop-{self.token}")
        await asyncio.to_thread(self.thread.join, 10)
        self.client.close()

    def per_hop(self, hops: int) -> dict:
        """Per hop: the commands clients sent, by name; the round trips they made (a MULTI ...
        EXEC pipeline is one); the commands run inside Lua scripts. Connection set-up (SELECT,
        CLIENT, HELLO) is left out."""
        sent = collections.Counter()
        in_lua = collections.Counter()
        round_trips = 0
        in_pipeline: set[tuple] = set()
        for command in self.commands:
            name = command["command"].split(" ", 1)[0].upper()
            if command["client_type"] == "lua":
                in_lua[name] += 1
                continue
            if name in SETUP_COMMANDS:
                continue
            sent[name] += 1
            client = (command["client_address"], command["client_port"])
            if name == "MULTI":
                in_pipeline.add(client)
            elif name == "EXEC":
                in_pipeline.discard(client)
                round_trips += 1
            elif client not in in_pipeline:
                round_trips += 1
        return {
            "hops": hops,
            "round_trips_per_hop": round(round_trips / hops, 2),
            "client_commands_per_hop": round(sum(sent.values()) / hops, 2),
            "client_commands": {k: round(v / hops, 2) for k, v in sent.most_common()},
            "lua_commands_per_hop": round(sum(in_lua.values()) / hops, 2),
            "lua_commands": {k: round(v / hops, 2) for k, v in in_lua.most_common()},
        }


async def count_layer_commands(layer, receiver: LayerReceiver, redis_url: str, hops: int) -> dict:
    """The same hops as measure_layer_hop, under MONITOR (which slows Redis: not timed)."""
    async with RedisMonitor(redis_url) as monitor:
        await measure_layer_hop(layer, receiver, hops, 0)
    return monitor.per_hop(hops)


async def probe_capacity(backend: str, redis_url: str, prefix: str) -> dict:
    """CAPACITY_PROBE group messages to a channel whose consumer is not reading, then read:
    the core layer keeps `capacity` (100) and drops the rest without an error."""
    sender = make_layer(backend, redis_url, prefix)
    reader = make_layer(backend, redis_url, prefix)
    group = "bench.capacity"
    channel = await reader.new_channel()
    await reader.group_add(group, channel)
    for seq in range(CAPACITY_PROBE):
        await sender.group_send(group, {"type": "probe", "seq": seq})
    await asyncio.sleep(0.2)  # pubsub: let the reader task take what is on the wire
    arrived = set()
    while True:
        try:
            message = await asyncio.wait_for(reader.receive(channel), 0.3)
        except TimeoutError:
            break
        arrived.add(message["seq"])
    await sender.flush()
    await reader.flush()
    return {
        "sent": CAPACITY_PROBE,
        "arrived": len(arrived),
        "dropped": CAPACITY_PROBE - len(arrived),
        "first_dropped_seq": min(set(range(CAPACITY_PROBE)) - arrived, default=None),
        "error_raised_on_send": False,  # group_send returned normally every time
    }


async def measure_layer(ctx: Context, backend: str, receiver: LayerReceiver, prefix: str) -> dict:
    count, warmup = samples(ctx)
    layer = make_layer(backend, ctx.redis_url, prefix)
    await receiver.wait_ready()
    try:
        hop = await measure_layer_hop(layer, receiver, count, warmup)
        hop["redis_commands"] = await count_layer_commands(layer, receiver, ctx.redis_url, 20)
        await layer.group_send(HOP_GROUP, {"type": "hop.stop"})
    finally:
        await layer.flush()
    await asyncio.to_thread(receiver.process.wait, 10)
    hop["capacity_probe"] = await probe_capacity(backend, ctx.redis_url, f"{prefix}cap")
    hop["what"] = f"{LAYERS[backend]}: group_send here -> receive() in another process, one way"
    return hop


# ---- B-ws -------------------------------------------------------------------------------------


async def measure_ws_echo(base_url: str, count: int, warmup: int) -> dict:
    import websockets

    frame = json.dumps({"type": "message.created", "message": {"body": SAMPLE_BODY}})
    timings = []
    async with websockets.connect(base_url.replace("http", "ws", 1) + "/", compression=None) as ws:
        for i in range(warmup + count):
            started = time.perf_counter_ns()
            await ws.send(frame)
            await ws.recv()
            if i >= warmup:
                timings.append(time.perf_counter_ns() - started)
    return {"round_trip_ms": summarize_ns(timings), "frame_chars": len(frame)}


# ---- B-db -------------------------------------------------------------------------------------


def measure_db_insert(ctx: Context, count: int, warmup: int) -> dict:
    """One-row INSERT ... RETURNING id + COMMIT with psycopg alone, into the real message table
    of a real conversation (made for this and deleted after, with its rows)."""
    import psycopg
    from django.db import connection

    from bench.stack import make_bench_users, setup_django

    setup_django(ctx.env)
    from inbox.services.messaging import get_or_create_conversation
    from marketplace.accounts.models import User

    try:
        (sender, _), (recipient, _) = make_bench_users(2, ctx.run_tag, prefix="bdb")
        conversation = get_or_create_conversation(user=sender, other_user=recipient)
        sql = INSERT_MESSAGE_SQL.format(p="%s")
        timings, ids = [], []
        with psycopg.connect(ctx.database_url) as db:
            for i in range(warmup + count):
                started = time.perf_counter_ns()
                with db.cursor() as cursor:
                    cursor.execute(
                        sql, (conversation.pk, sender.pk, SAMPLE_BODY, uuid.uuid4(), dt.datetime.now(dt.UTC))
                    )
                    ids.append(cursor.fetchone()[0])
                db.commit()
                if i >= warmup:
                    timings.append(time.perf_counter_ns() - started)
            db.execute("DELETE FROM inbox_message WHERE id = ANY(%s)", (ids,))
            db.commit()
            server = db.execute("SHOW server_version").fetchone()[0]
        conversation.delete()
        User.objects.filter(pk__in=[sender.pk, recipient.pk]).delete()
    finally:
        connection.close()
    return {
        "ms": summarize_ns(timings),
        "what": f"psycopg {psycopg.__version__}: INSERT INTO inbox_message ... RETURNING id; COMMIT",
        "server": f"PostgreSQL {server}",
    }


# ---- B-q --------------------------------------------------------------------------------------


async def measure_queue(redis_url: str, key: str, count: int) -> dict:
    """A producer LPUSHes `count` messages while a consumer BRPOPs them one at a time, on two
    connections (a Celery hop's two ends): messages per second from the first push to the
    last pop."""
    import redis.asyncio

    payload = json.dumps({"task": "notifications.fan_out", "args": [[1]], "pad": "x" * 600})
    producer = redis.asyncio.Redis.from_url(redis_url)
    consumer = redis.asyncio.Redis.from_url(redis_url)

    async def produce():
        for _ in range(count):
            await producer.lpush(key, payload)

    async def consume():
        for _ in range(count):
            if await consumer.brpop([key], timeout=5) is None:
                raise RuntimeError("B-q: the queue ran dry")

    try:
        await consumer.ping()
        await producer.ping()
        started = time.perf_counter()
        await asyncio.gather(produce(), consume())
        seconds = time.perf_counter() - started
    finally:
        await producer.delete(key)
        await producer.aclose()
        await consumer.aclose()
    return {"per_second": round(count / seconds, 1), "messages": count, "payload_bytes": len(payload)}


# ---- The benchmark ----------------------------------------------------------------------------


def _ms(summary: dict) -> str:
    return f"p50 {summary['p50']} ms, p99 {summary['p99']} ms (n={summary['n']})"


async def run(ctx: Context) -> Result:
    count, warmup = samples(ctx)
    prefixes = {backend: f"bench{ctx.run_tag}bl{backend}" for backend in LAYERS}
    # Children first: they start while the in-process baselines run.
    receivers = {backend: LayerReceiver(ctx, backend, prefixes[backend]) for backend in LAYERS}
    echo = asyncio.create_task(start_servers(ctx, 1, app="bench.stack:ws_echo_app", label="daphne-echo"))

    rows: list[Row] = []
    details: dict = {"samples": count, "warmup": warmup, "errors": {}}

    async def attempt(key: str, metric: str, measure, describe):
        try:
            log(f"baseline {metric}")
            value = await measure()
        except Exception as exc:
            details["errors"][key] = "".join(traceback.format_exception_only(exc)).strip()
            rows.append(Row(metric, "(baseline)", f"failed: {type(exc).__name__}: {exc}"[:300], None))
            return None
        measured, figures = describe(value)
        rows.append(Row(metric, "(baseline)", measured, None, figures))
        return value

    ping = await attempt(
        "redis_ping_ms", "B-redis: redis-py asyncio PING round trip",
        lambda: measure_redis_ping(ctx.redis_url, count, warmup), lambda v: (_ms(v), v),
    )  # fmt: skip
    if ping:
        ctx.baselines["redis_ping_ms"] = ping

    hops = {}
    for backend in LAYERS:
        hop = await attempt(
            f"layer_hop_ms.{backend}",
            f"B-layer ({backend}): group_send → receive() in another process, one way",
            lambda backend=backend: measure_layer(ctx, backend, receivers[backend], prefixes[backend]),
            lambda v: (
                f"{_ms(v['one_way_ms'])}; {v['redis_commands']['round_trips_per_hop']} Redis round trips "
                f"a hop; {v['capacity_probe']['arrived']}/{CAPACITY_PROBE} to an unread channel",
                v,
            ),
        )
        if hop:
            hops[backend] = hop["one_way_ms"]
            details[f"layer_{backend}"] = hop
    if hops:
        ctx.baselines["layer_hop_ms"] = hops
    if "pubsub" in hops and "core" in hops and hops["core"]["p50"]:
        details["pubsub_over_core_p50"] = round(hops["pubsub"]["p50"] / hops["core"]["p50"], 2)

    async def ws():
        servers = await echo
        ((base_url, _process),) = servers.values()
        return await measure_ws_echo(base_url, count, warmup)

    ws_echo = await attempt(
        "ws_echo_ms", "B-ws: daphne + raw ASGI echo app, websockets client, round trip",
        ws, lambda v: (f"{_ms(v['round_trip_ms'])}, {v['frame_chars']}-char frame", v),
    )  # fmt: skip
    if ws_echo:
        ctx.baselines["ws_echo_ms"] = ws_echo["round_trip_ms"]
    if not echo.done():
        echo.cancel()

    db = await attempt(
        "db_insert_ms", "B-db: psycopg one-row INSERT INTO inbox_message + COMMIT",
        lambda: asyncio.to_thread(measure_db_insert, ctx, count, warmup), lambda v: (_ms(v["ms"]), v),
    )  # fmt: skip
    if db:
        ctx.baselines["db_insert_ms"] = db["ms"]

    queue = await attempt(
        "queue_per_s", "B-q: redis-py LPUSH/BRPOP, one producer and one consumer",
        lambda: measure_queue(ctx.redis_url, f"bench:{ctx.run_tag}:bq", 2000 if ctx.quick else 20_000),
        lambda v: (f"{v['per_second']:,.0f} messages/s ({v['messages']} of {v['payload_bytes']} B)", v),
    )  # fmt: skip
    if queue:
        ctx.baselines["queue_per_s"] = queue["per_second"]
    return Result(rows=rows, details=details)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--layer-receiver":
        asyncio.run(layer_receiver_main(*sys.argv[2:]))
    else:
        sys.exit(
            "usage: python -m bench.baselines --layer-receiver <pubsub|core> <redis_url> <prefix> <group>"
        )
