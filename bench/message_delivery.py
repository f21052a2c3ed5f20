"""Message delivery benchmark: HTTP send on one daphne process -> websocket receipt on another.

Not a test: it measures. It starts N daphne processes on the configured database and Redis,
creates a sender and a recipient, opens the recipient's websocket on process 1 and sends over
HTTP to process 2 (round robin over processes 2..N; process 1 when N is 1). It reports:

- sequential delivery latency: POST start -> message.created frame received, one at a time;
- open-loop delivery latency at a fixed rate, measured from each message's *intended* send
  time, so a slow server cannot hide its queueing (no coordinated omission);
- lost and duplicated messages, by the sequence number in each body, plus a check of the
  recipient's event log;
- same-run baselines (docs: ../shared/research/performance.md section 6.1):
  B-layer, a bare RedisPubSubChannelLayer hop (group_send here, receive() in another process);
  B-db, one-row INSERT + COMMIT into the message table with the driver alone;
  B-ws, a raw ASGI websocket echo round trip on daphne, without Channels or Django;
- the ratios of section 6.2 rows 1 (latency) and 5 (loss).

It prints one JSON object, then a short summary. Usage (from the project root):

    .venv/bin/python bench/message_delivery.py [--processes 2] [--rate 50] [--seconds 10]
        [--messages 200] [--json-out results.json]

DATABASE_URL and REDIS_URL come from the environment (defaults: a scratch SQLite file,
redis://127.0.0.1:6379/0). Every process started here is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

# Run as `python bench/message_delivery.py`: the project root on the path, for `bench.stack`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baselines import INSERT_MESSAGE_SQL
from bench.stack import (
    DEFAULT_REDIS_URL,
    PYTHON,
    ROOT,
    CpuMeter,
    ProcessGroup,
    bench_env,
    free_port,
    log,
    machine_info,
    manage,
    package_versions,
    ratio,
    redact,
    redis_server_version,
    summarize_ns,
    wait_healthy,
)

LAYER_RECEIVER_FLAG = "--layer-receiver"
HOP_GROUP = "bench.hop"


# ---- B-layer: a bare channel-layer hop across two processes -----------------------------------


def make_layer(redis_url: str, prefix: str):
    from channels_redis.pubsub import RedisPubSubChannelLayer

    return RedisPubSubChannelLayer(hosts=[redis_url], prefix=prefix)


async def layer_receiver_main(redis_url: str, prefix: str) -> None:
    """Child process: receive hops from the group, report each one-way time to the sender."""
    layer = make_layer(redis_url, prefix)
    channel = await layer.new_channel()
    await layer.group_add(HOP_GROUP, channel)
    print("ready", flush=True)
    while True:
        message = await layer.receive(channel)
        received = time.monotonic_ns()  # CLOCK_MONOTONIC: one clock for every process on the host
        if message.get("type") == "hop.stop":
            break
        await layer.send(
            message["reply_to"],
            {"type": "hop.echo", "seq": message["seq"], "hop_ns": received - message["sent_ns"]},
        )
    await layer.flush()


async def measure_layer_hop(
    redis_url: str, prefix: str, group: ProcessGroup, env: dict, count: int, warmup: int
) -> dict:
    receiver = group.start(
        "layer-receiver",
        [PYTHON, str(Path(__file__).resolve()), LAYER_RECEIVER_FLAG, redis_url, prefix],
        env,
        capture_stdout=True,
    )
    loop = asyncio.get_running_loop()
    ready = await asyncio.wait_for(loop.run_in_executor(None, receiver.stdout.readline), 30)
    if ready.strip() != b"ready":
        raise RuntimeError(f"layer receiver did not start:\n{group.log_tail('layer-receiver')}")
    layer = make_layer(redis_url, prefix)
    reply_to = await layer.new_channel()
    one_way, round_trip, lost = [], [], 0
    for seq in range(warmup + count):
        sent = time.monotonic_ns()
        await layer.group_send(HOP_GROUP, {"type": "hop", "seq": seq, "sent_ns": sent, "reply_to": reply_to})
        try:
            echo = await asyncio.wait_for(layer.receive(reply_to), 5)
        except TimeoutError:
            lost += 1
            continue
        if seq >= warmup:
            one_way.append(echo["hop_ns"])
            round_trip.append(time.monotonic_ns() - sent)
    await layer.group_send(HOP_GROUP, {"type": "hop.stop"})
    await layer.flush()
    await loop.run_in_executor(None, receiver.wait, 10)
    return {
        "what": "RedisPubSubChannelLayer group_send (this process) -> receive() in another process",
        "one_way_ms": summarize_ns(one_way),
        "round_trip_ms": summarize_ns(round_trip),
        "lost": lost,
    }


# ---- B-db: one-row INSERT + COMMIT -------------------------------------------------------------


def measure_db_insert(db: dict, conversation_id: int, sender_id: int, body: str, count: int, warmup: int):
    """The message table's own INSERT (all its indexes and constraints), committed row by row
    with the bare driver, as Django's autocommit would; the rows are deleted afterwards."""
    engine = db["ENGINE"]
    timings, ids = [], []
    if engine.endswith("postgresql"):
        import psycopg

        connection = psycopg.connect(
            host=db.get("HOST") or None,
            port=db.get("PORT") or None,
            user=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
            dbname=db["NAME"],
        )
        sql = INSERT_MESSAGE_SQL.format(p="%s")
        try:
            for i in range(warmup + count):
                started = time.perf_counter_ns()
                with connection.cursor() as cursor:
                    cursor.execute(
                        sql,
                        (conversation_id, sender_id, body, uuid.uuid4(), dt.datetime.now(dt.UTC)),
                    )
                    ids.append(cursor.fetchone()[0])
                connection.commit()
                if i >= warmup:
                    timings.append(time.perf_counter_ns() - started)
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM inbox_message WHERE id = ANY(%s)", (ids,))
            connection.commit()
            server = connection.execute("SHOW server_version").fetchone()[0]
        finally:
            connection.close()
        what = f"psycopg {psycopg.__version__}: INSERT INTO inbox_message ... RETURNING id; COMMIT"
        return {"what": what, "server": f"PostgreSQL {server}", "ms": summarize_ns(timings)}
    if engine.endswith("sqlite3"):
        connection = sqlite3.connect(db["NAME"], isolation_level=None, timeout=20)
        sql = INSERT_MESSAGE_SQL.format(p="?")
        try:
            for i in range(warmup + count):
                started = time.perf_counter_ns()
                connection.execute("BEGIN IMMEDIATE")  # what Django's transaction_mode=IMMEDIATE does
                now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
                row = connection.execute(sql, (conversation_id, sender_id, body, uuid.uuid4().hex, now))
                ids.append(row.fetchone()[0])
                connection.execute("COMMIT")
                if i >= warmup:
                    timings.append(time.perf_counter_ns() - started)
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany("DELETE FROM inbox_message WHERE id = ?", [(pk,) for pk in ids])
            connection.execute("COMMIT")
        finally:
            connection.close()
        what = "sqlite3: BEGIN IMMEDIATE; INSERT INTO inbox_message ... RETURNING id; COMMIT"
        return {"what": what, "server": f"SQLite {sqlite3.sqlite_version}", "ms": summarize_ns(timings)}
    raise RuntimeError(f"no B-db baseline for {engine}")


# ---- B-ws: raw websocket echo round trip -------------------------------------------------------


async def measure_ws_echo(port: int, count: int, warmup: int, body: str) -> dict:
    import websockets

    timings = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
        for i in range(warmup + count):
            started = time.perf_counter_ns()
            await ws.send(body)
            await ws.recv()
            if i >= warmup:
                timings.append(time.perf_counter_ns() - started)
    return {
        "what": "daphne + raw ASGI echo app, websockets client, round trip",
        "round_trip_ms": summarize_ns(timings),
    }


# ---- Delivery ---------------------------------------------------------------------------------


class Inbox:
    """The recipient's websocket: records when each benchmark message arrives."""

    def __init__(self, run_tag: str):
        self.prefix = f"bench {run_tag} "
        self.receipts: dict[str, dict[int, list[int]]] = {}
        self.waiters: dict[tuple[str, int], asyncio.Future] = {}
        self.other_frames: dict[str, int] = {}
        self.hello: dict | None = None
        self.closed_with: str | None = None

    def body(self, phase: str, seq: int) -> str:
        return f"{self.prefix}{phase} {seq}"

    def wait_for(self, phase: str, seq: int) -> asyncio.Future:
        key = (phase, seq)
        future = asyncio.get_running_loop().create_future()
        if self.receipts.get(phase, {}).get(seq):
            future.set_result(self.receipts[phase][seq][0])
        else:
            self.waiters[key] = future
        return future

    async def read(self, ws) -> None:
        import websockets

        try:
            async for raw in ws:
                received = time.perf_counter_ns()
                frame = json.loads(raw)
                if frame.get("type") == "hello":
                    self.hello = frame
                    continue
                body = (frame.get("message") or {}).get("body", "")
                if frame.get("type") != "message.created" or not body.startswith(self.prefix):
                    self.other_frames[frame.get("type", "?")] = (
                        self.other_frames.get(frame.get("type", "?"), 0) + 1
                    )
                    continue
                phase, seq_text = body[len(self.prefix) :].split(" ", 1)
                seq = int(seq_text)
                self.receipts.setdefault(phase, {}).setdefault(seq, []).append(received)
                waiter = self.waiters.pop((phase, seq), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(received)
        except websockets.ConnectionClosed as closed:
            self.closed_with = f"{type(closed).__name__}: {closed}"

    def count(self, phase: str, accepted: set[int]) -> dict:
        got = self.receipts.get(phase, {})
        received = {seq for seq in got if seq in accepted}
        return {
            "expected": len(accepted),
            "received": len(received),
            "lost": len(accepted - received),
            "duplicated": sum(len(times) - 1 for times in got.values()),
            "unexpected": len(set(got) - accepted),
            "delivered_over_expected": round(len(received) / len(accepted), 4) if accepted else None,
        }


async def send_one(client, conversation_id: int, body: str) -> tuple[int | str, int]:
    import httpx

    try:
        response = await client.post(
            f"/api/v1/conversations/{conversation_id}/messages",
            json={"body": body, "client_id": str(uuid.uuid4())},
        )
        return response.status_code, time.perf_counter_ns()
    except httpx.HTTPError as exc:
        return type(exc).__name__, time.perf_counter_ns()


async def run_sequential(inbox: Inbox, senders, conversation_id: int, count: int, warmup: int) -> dict:
    latencies, post_times, errors = [], [], {}
    accepted: set[int] = set()
    for phase, total in (("warmup", warmup), ("sequential", count)):
        for seq in range(total):
            client = senders[seq % len(senders)]
            waiter = inbox.wait_for(phase, seq)
            started = time.perf_counter_ns()
            status, answered = await send_one(client, conversation_id, inbox.body(phase, seq))
            if status != 201:
                errors[str(status)] = errors.get(str(status), 0) + 1
                waiter.cancel()
                continue
            try:
                received = await asyncio.wait_for(waiter, 5)
            except TimeoutError:
                received = None
            if phase == "sequential":
                accepted.add(seq)
                post_times.append(answered - started)
                if received is not None:
                    latencies.append(received - started)
    return {
        "delivery_ms": summarize_ns(latencies),
        "http_post_ms": summarize_ns(post_times),
        "http_errors": errors,
        "accepted": accepted,
    }


async def run_open_loop(
    inbox: Inbox, senders, conversation_id: int, rate: float, seconds: float, drain_seconds: float
) -> dict:
    total = int(rate * seconds)
    interval_ns = 1e9 / rate
    start_ns = time.perf_counter_ns() + 200_000_000
    intended = [int(start_ns + i * interval_ns) for i in range(total)]
    start_lag, post_times, errors = [], [], {}
    accepted: set[int] = set()

    async def send_at(seq: int) -> None:
        delay = (intended[seq] - time.perf_counter_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        started = time.perf_counter_ns()
        start_lag.append(started - intended[seq])
        status, answered = await send_one(
            senders[seq % len(senders)], conversation_id, inbox.body("open", seq)
        )
        post_times.append(answered - started)
        if status == 201:
            accepted.add(seq)
        else:
            errors[str(status)] = errors.get(str(status), 0) + 1

    await asyncio.gather(*(send_at(seq) for seq in range(total)))
    sends_done = time.perf_counter_ns()
    deadline = time.monotonic() + drain_seconds
    while time.monotonic() < deadline:
        got = inbox.receipts.get("open", {})
        if all(seq in got for seq in accepted):
            break
        await asyncio.sleep(0.05)
    receipts = inbox.receipts.get("open", {})
    latencies = [receipts[seq][0] - intended[seq] for seq in accepted if seq in receipts]
    return {
        "delivery_ms": summarize_ns(latencies),
        "http_post_ms": summarize_ns(post_times),
        "sender_start_lag_ms": summarize_ns(start_lag),
        "offered_rate_per_s": rate,
        # Messages accepted per second, from the first intended send to the last HTTP answer.
        "completed_rate_per_s": round(len(accepted) / ((sends_done - start_ns) / 1e9), 1) if total else None,
        "http_errors": errors,
        "accepted": accepted,
    }


async def count_event_log(client, since: int, inbox: Inbox) -> dict[str, int]:
    """How many benchmark messages the recipient's event log holds, per phase."""
    counts: dict[str, int] = {}
    while True:
        response = await client.get("/api/v1/events", params={"since": since})
        response.raise_for_status()
        page = response.json()
        for event in page["items"]:
            body = (event.get("message") or {}).get("body", "")
            if event["type"] == "message.created" and body.startswith(inbox.prefix):
                phase = body[len(inbox.prefix) :].split(" ", 1)[0]
                counts[phase] = counts.get(phase, 0) + 1
        if page["next_cursor"] is None:
            return counts
        since = page["next_cursor"]


def row1_ratios(delivery: dict, b_ws: dict, b_layer: dict, b_db: dict) -> dict:
    """performance.md 6.2 row 1: p50 <= 2.0x (B-ws+B-layer+B-db) p50; p99 <= 3.0x the sum of p99s."""
    out = {}
    for pct, limit in (("p50", 2.0), ("p99", 3.0)):
        layer_db = b_layer["one_way_ms"][pct] + b_db["ms"][pct]
        full = layer_db + b_ws["round_trip_ms"][pct]
        value = delivery["delivery_ms"][pct]
        out[pct] = {
            "delivery_ms": value,
            "baseline_layer_plus_db_ms": round(layer_db, 3),
            "ratio_to_layer_plus_db": ratio(value, layer_db),
            "baseline_ws_plus_layer_plus_db_ms": round(full, 3),
            "ratio_to_ws_plus_layer_plus_db": ratio(value, full),
            "target_ratio": limit,
            "meets_target": value is not None and value <= limit * full,
        }
    return out


def human_summary(report: dict) -> str:
    b = report["baselines"]
    lines = [
        f"message_delivery on {report['settings']['database']} + {report['settings']['redis_url']}, "
        f"{report['settings']['processes']} daphne processes, {report['machine']['cpu_count']} CPUs, "
        f"Python {report['machine']['python']} ({report['date']})",
        "Baselines (ms, p50 / p99):",
        f"  B-layer  pubsub hop, other process  {b['layer_hop']['one_way_ms']['p50']} / "
        f"{b['layer_hop']['one_way_ms']['p99']}",
        f"  B-db     INSERT+COMMIT, one row     {b['db_insert_commit']['ms']['p50']} / "
        f"{b['db_insert_commit']['ms']['p99']}",
        f"  B-ws     raw daphne echo round trip {b['ws_echo']['round_trip_ms']['p50']} / "
        f"{b['ws_echo']['round_trip_ms']['p99']}",
    ]
    for name in ("sequential", "open_loop"):
        run = report[name]
        d = run["delivery_ms"]
        title = (
            f"Sequential, {run['loss']['expected']} messages"
            if name == "sequential"
            else f"Open loop, {run['offered_rate_per_s']} msg/s for {report['settings']['seconds']} s "
            f"(completed {run['completed_rate_per_s']} msg/s)"
        )
        loss = run["loss"]
        r1 = run["row1"]
        lines += [
            f"{title}:",
            f"  send -> receive ms  p50 {d['p50']}  p95 {d['p95']}  p99 {d['p99']}  max {d['max']}  "
            f"(HTTP POST p50 {run['http_post_ms']['p50']})",
            f"  row 1: p50 = {r1['p50']['ratio_to_ws_plus_layer_plus_db']}x (B-ws+B-layer+B-db), "
            "target <= 2.0x; "
            f"p99 = {r1['p99']['ratio_to_ws_plus_layer_plus_db']}x, target <= 3.0x"
            f" -> {'met' if r1['p50']['meets_target'] and r1['p99']['meets_target'] else 'NOT met'}",
            f"         p50 = {r1['p50']['ratio_to_layer_plus_db']}x (B-layer+B-db), "
            f"p99 = {r1['p99']['ratio_to_layer_plus_db']}x",
            f"  row 5: delivered/expected = {loss['delivered_over_expected']} "
            f"(lost {loss['lost']}, duplicated {loss['duplicated']}, in event log {loss['in_event_log']}/"
            f"{loss['expected']}, HTTP errors {run['http_errors'] or 0})",
        ]
        if (
            name == "open_loop"
            and run["sender_start_lag_ms"]["p99"]
            and run["sender_start_lag_ms"]["p99"] > 5
        ):
            lines.append(
                "  note: the load generator started sends late "
                f"(p99 {run['sender_start_lag_ms']['p99']} ms); "
                "latencies include that lag"
            )
    cpu = report["open_loop"]["cpu"]
    shares = ", ".join(
        f"{k} {v['percent_of_one_core']}%"
        for k, v in cpu.items()
        if isinstance(v, dict) and "percent_of_one_core" in v
    )
    lines.append(f"CPU during the open-loop run (% of one core): {shares}")
    return "\n".join(lines)


async def benchmark(args, group: ProcessGroup, scratch: Path) -> dict:
    import httpx
    import websockets
    from environ import Env

    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{scratch / 'bench.sqlite3'}"
    db = Env.db_url_config(database_url)
    run_tag = f"{time.strftime('%Y%m%d%H%M%S')}{secrets.token_hex(3)}"
    prefix = f"bench{run_tag}"
    env = bench_env(database_url, redis_url, run_tag)
    # No Celery worker here: tasks run eagerly in the servers, as this benchmark always did.
    env.pop("CELERY_BROKER_URL", None)
    env["DJANGO_DEBUG"] = "1" if args.django_debug else "0"
    # The sender is minutes old and sends hundreds of messages: the new-account burst rule
    # would hold them for a moderator. No account counts as new here.
    env["MODERATION_NEW_ACCOUNT_DAYS"] = "0"

    load_at_start = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    log(f"database {redact(database_url)}, redis {redact(redis_url)}, layer prefix {prefix}")
    log("migrate")
    manage(env, "migrate", "--noinput")
    password = secrets.token_urlsafe(16)
    sender_name, recipient_name = f"bench_s_{run_tag}", f"bench_r_{run_tag}"
    for name, extra in ((sender_name, []), (recipient_name, ["--seller"])):
        manage(env, "create_user", name, "--password", password, "--verified", *extra)

    ports = [free_port() for _ in range(args.processes)]
    servers = {}
    for index, port in enumerate(ports, start=1):
        name = f"daphne-{index}"
        process = group.start(
            name,
            [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "marketplace.asgi:application"],
            env,
        )
        servers[name] = process
    echo_port = free_port()
    echo = group.start(
        "daphne-echo",
        [
            PYTHON,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(echo_port),
            "bench.stack:ws_echo_app",
        ],
        env,
    )
    log(f"starting {args.processes} daphne processes on ports {ports} (+ echo on {echo_port})")
    await asyncio.gather(
        *(
            wait_healthy(f"http://127.0.0.1:{port}", servers[f"daphne-{i}"], f"daphne-{i}", group)
            for i, port in enumerate(ports, start=1)
        ),
        wait_healthy(f"http://127.0.0.1:{echo_port}", echo, "daphne-echo", group),
    )
    meter = CpuMeter({name: process.pid for name, process in servers.items()})

    base = [f"http://127.0.0.1:{port}" for port in ports]
    async with httpx.AsyncClient(base_url=base[0], timeout=30) as anonymous:
        tokens = {}
        for name in (sender_name, recipient_name):
            response = await anonymous.post(
                "/api/v1/auth/token", json={"username": name, "password": password}
            )
            response.raise_for_status()
            tokens[name] = response.json()["token"]

    limits = httpx.Limits(
        max_connections=args.max_connections, max_keepalive_connections=args.max_connections
    )
    send_targets = base[1:] or base[:1]
    senders = [
        httpx.AsyncClient(
            base_url=url,
            timeout=30,
            limits=limits,
            headers={"Authorization": f"Bearer {tokens[sender_name]}"},
        )
        for url in send_targets
    ]
    recipient_http = httpx.AsyncClient(
        base_url=base[0], timeout=30, headers={"Authorization": f"Bearer {tokens[recipient_name]}"}
    )
    inbox = Inbox(run_tag)
    try:
        response = await senders[0].post(
            "/api/v1/conversations", json={"recipient": recipient_name, "body": f"{inbox.prefix}setup 0"}
        )
        response.raise_for_status()
        conversation_id = response.json()["id"]
        me = await senders[0].get("/api/v1/me")
        sender_id = me.json()["id"]

        ws_url = base[0].replace("http", "ws", 1) + "/ws/events/"
        async with websockets.connect(
            ws_url,
            additional_headers={"Authorization": f"Bearer {tokens[recipient_name]}"},
            compression=None,
            max_queue=None,
        ) as ws:
            reader = asyncio.create_task(inbox.read(ws))
            for _ in range(100):
                if inbox.hello is not None:
                    break
                await asyncio.sleep(0.05)
            if inbox.hello is None:
                raise RuntimeError(f"no hello frame on the recipient's socket ({inbox.closed_with})")
            hello_cursor = inbox.hello["cursor"]

            body_sample = inbox.body("open", 10_000)
            log("baseline B-layer (pubsub hop to another process)")
            b_layer = await measure_layer_hop(redis_url, prefix + "hop", group, env, args.baseline_count, 50)
            log("baseline B-db (INSERT + COMMIT)")
            b_db = await asyncio.to_thread(
                measure_db_insert, db, conversation_id, sender_id, body_sample, args.baseline_count, 20
            )
            log("baseline B-ws (raw daphne websocket echo)")
            b_ws = await measure_ws_echo(
                echo_port, args.baseline_count, 50, json.dumps({"body": body_sample})
            )

            log(f"sequential: {args.warmup} warm-up + {args.messages} messages")
            before = meter.snapshot()
            sequential = await run_sequential(inbox, senders, conversation_id, args.messages, args.warmup)
            sequential["cpu"] = CpuMeter.between(before, meter.snapshot())

            log(f"open loop: {args.rate} msg/s for {args.seconds} s")
            before = meter.snapshot()
            open_loop = await run_open_loop(
                inbox, senders, conversation_id, args.rate, args.seconds, args.drain
            )
            open_loop["cpu"] = CpuMeter.between(before, meter.snapshot())

            await asyncio.sleep(0.5)
            in_log = await count_event_log(recipient_http, hello_cursor, inbox)
            for phase, run in (("sequential", sequential), ("open", open_loop)):
                accepted = run.pop("accepted")
                run["loss"] = inbox.count(phase, accepted)
                run["loss"]["in_event_log"] = in_log.get(phase, 0)
            socket_state = inbox.closed_with or "open until the end"
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    finally:
        for client in [*senders, recipient_http]:
            await client.aclose()

    for run in (sequential, open_loop):
        run["row1"] = row1_ratios(run, b_ws, b_layer, b_db)

    return {
        "benchmark": "message_delivery",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(
            [
                *(
                    f"{name}={redact(os.environ[name])}"
                    for name in ("DATABASE_URL", "REDIS_URL")
                    if name in os.environ
                ),
                os.path.relpath(sys.executable, ROOT),
                *sys.argv,
            ]
        ),
        "settings": {
            "processes": args.processes,
            "websocket_on": "daphne-1",
            "sends_to": [f"daphne-{i}" for i in range(2, args.processes + 1)] or ["daphne-1"],
            "cross_process": args.processes > 1,
            "rate": args.rate,
            "seconds": args.seconds,
            "messages": args.messages,
            "warmup": args.warmup,
            "baseline_count": args.baseline_count,
            "max_connections_per_target": args.max_connections,
            "database": db["ENGINE"].rsplit(".", 1)[-1],
            "database_url": redact(database_url),
            "redis_url": redact(redis_url),
            "channel_layer": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "channel_layer_prefix": prefix,
            "django_debug": bool(args.django_debug),
            "body_chars": len(body_sample),
            "recipient_socket": socket_state,
        },
        "machine": {**machine_info(), "load_average_at_start": load_at_start},
        "versions": {
            **package_versions(),
            "database_server": b_db["server"],
            "redis_server": redis_server_version(redis_url),
        },
        "baselines": {"layer_hop": b_layer, "db_insert_commit": b_db, "ws_echo": b_ws},
        "sequential": sequential,
        "open_loop": open_loop,
        "other_frames_on_recipient_socket": inbox.other_frames,
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=2, help="daphne processes (default 2)")
    parser.add_argument("--rate", type=float, default=50, help="open-loop messages per second (default 50)")
    parser.add_argument("--seconds", type=float, default=10, help="open-loop duration (default 10)")
    parser.add_argument("--messages", type=int, default=200, help="sequential messages (default 200)")
    parser.add_argument("--json-out", type=Path, help="also write the JSON report to this file")
    parser.add_argument("--warmup", type=int, default=20, help="sequential warm-up messages, not counted")
    parser.add_argument("--baseline-count", type=int, default=500, help="samples per baseline (default 500)")
    parser.add_argument(
        "--drain", type=float, default=10, help="seconds to wait for late frames (default 10)"
    )
    parser.add_argument("--max-connections", type=int, default=64, help="HTTP connections per target process")
    parser.add_argument("--django-debug", action="store_true", help="run the servers with DJANGO_DEBUG=1")
    parser.add_argument("--keep-logs", action="store_true", help="keep the server logs and scratch files")
    args = parser.parse_args(argv)
    if args.processes < 1 or args.rate <= 0 or args.seconds <= 0 or args.messages < 1:
        parser.error("--processes, --rate, --seconds and --messages must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    group = ProcessGroup(scratch)

    def on_sigterm(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGHUP, on_sigterm)
    # Ctrl-C must work even when started from a shell that ignores SIGINT for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        report = asyncio.run(benchmark(args, group, scratch))
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except RuntimeError as exc:
        log(f"failed: {exc}")
        log(f"logs kept in {scratch}")
        args.keep_logs = True
        return 1
    finally:
        group.stop_all()
        if not args.keep_logs:
            for path in scratch.iterdir():
                path.unlink()
            scratch.rmdir()
    text = json.dumps(report, indent=2)
    print(text)
    if args.json_out:
        args.json_out.write_text(text + "\n")
    print()
    print(human_summary(report))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == LAYER_RECEIVER_FLAG:
        asyncio.run(layer_receiver_main(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(main())
