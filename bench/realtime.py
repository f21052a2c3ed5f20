"""Real time: send over HTTP -> the recipient's websocket, with many clients connected.

Buyer/seller pairs, one conversation each, every client's `/ws/events/` socket open (buyers on
one daphne process, their sellers on the other, so every message crosses processes through
Redis). The generator sends open loop over HTTP POST to the sender's own server; each body
carries its conversation, a per-conversation sequence number and its intended send time, so
latency is measured from the intended time and loss and duplication are counted.

Rows: delivery at 200 msg/s against (B-ws + B-layer + B-db) of the same run; the highest
sustained rate with p99 <= 50 ms (with a py-spy profile of a daphne process at the limit);
loss with clients reconnecting and resuming from their cursor like the page does (live.js);
idle memory per socket and after connect/drop cycles against a bare echo app (B-wsmem); the
connect storm; and the same delivery run served by uvicorn, for comparison.

Bench users join "30 days ago", so the new-account anti-spam rules (MODERATION_NEW_ACCOUNT_*)
do not hold their messages; every other rule and scanner runs as in production.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import re
import resource
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from bench.clients import (
    Deployment,
    ResumingClient,
    as_letters,
    close_clients,
    connect_clients,
    create_pairs,
    from_letters,
    ws_url,
)
from bench.stack import (
    ROOT,
    VENV_BIN,
    Context,
    CpuMeter,
    Result,
    Row,
    celery_queue_length,
    drop_queued_tasks,
    log,
    ratio,
    rss_bytes,
    setup_django,
    start_servers,
    summarize_ns,
)

NAME = "realtime"
TITLE = "Real time: delivery latency, sustained rate, loss under churn, socket memory, connect storm"

P99_LIMIT_MS = 50.0


@dataclasses.dataclass(frozen=True)
class Sizes:
    clients: int  # sockets: half buyers, half sellers, one conversation per pair
    rate: float  # msg/s for the delivery row (and the uvicorn comparison)
    delivery_seconds: float
    steps: tuple[float, ...]  # offered rates for the sustained row, tried in order
    step_seconds: float
    churn_seconds: float
    churn_every_seconds: float
    churn_fraction: float  # of the clients, reconnecting every churn_every_seconds
    churn_rate: float
    memory_cycles: int
    drain_seconds: float


FULL = Sizes(
    clients=1000, rate=200, delivery_seconds=30, steps=(25, 50, 100, 200, 300, 400, 600, 800, 1000, 1200),
    step_seconds=15, churn_seconds=600, churn_every_seconds=6, churn_fraction=0.01, churn_rate=100,
    memory_cycles=10, drain_seconds=10,
)  # fmt: skip
QUICK = Sizes(
    clients=100, rate=200, delivery_seconds=0.5, steps=(25, 50), step_seconds=1, churn_seconds=4,
    churn_every_seconds=1, churn_fraction=0.1, churn_rate=100, memory_cycles=3, drain_seconds=3,
)  # fmt: skip


# ---- Clients ------------------------------------------------------------------------------------


class Tracker:
    """What was sent (accepted by the server) and what reached each recipient, and how."""

    def __init__(self, run_tag: str):
        # Digits written as letters (0 -> a ... 9 -> j): the phone scanner refuses a body with a
        # run of digits that reads as a phone number (a ten-digit run tag did, in one run).
        self.prefix = f"rt {as_letters(run_tag)} "
        self.pattern = re.compile(r"c([a-j]+) s([a-j]+) t([a-j]+)$")
        self.accepted: dict[tuple[int, int], tuple[str, int]] = {}  # (conv, seq) -> (phase, intended_ns)
        self.on_socket: dict[tuple[int, int], list[int]] = collections.defaultdict(list)  # arrival ns
        self.applied: dict[tuple[int, int], set[int]] = collections.defaultdict(set)  # cursors applied
        self.applied_via: collections.Counter = collections.Counter()
        self.deduplicated_by_cursor = 0  # seen twice (socket + catch-up) and dropped, as live.js does

    def body(self, conv: int, seq: int, intended_ns: int) -> str:
        return f"{self.prefix}c{as_letters(conv)} s{as_letters(seq)} t{as_letters(intended_ns)}"

    def key_of(self, client: Client, event: dict) -> tuple[int, int] | None:
        """(conv, seq) when the event is one of ours, received by its recipient."""
        if event.get("type") != "message.created":
            return None
        message = event.get("message") or {}
        body = message.get("body", "")
        if not body.startswith(self.prefix) or message.get("sender") == client.username:
            return None
        match = self.pattern.search(body)
        return (from_letters(match[1]), from_letters(match[2])) if match else None

    def phase_keys(self, phase: str) -> dict[tuple[int, int], int]:
        return {key: intended for key, (p, intended) in self.accepted.items() if p == phase}

    def count(self, phase: str, *, with_catch_up: bool) -> dict:
        keys = self.phase_keys(phase)
        latencies, lost, duplicated, stored_twice = [], 0, 0, 0
        for key, intended in keys.items():
            arrivals = self.on_socket.get(key, [])
            if arrivals:
                latencies.append(arrivals[0] - intended)
                duplicated += len(arrivals) - 1
            if len(self.applied.get(key, ())) > 1:
                stored_twice += 1
            delivered = bool(arrivals) or (with_catch_up and self.applied.get(key))
            lost += not delivered
        return {
            "accepted": len(keys),
            "on_socket": sum(1 for key in keys if self.on_socket.get(key)),
            "lost": lost,
            "duplicated": duplicated + stored_twice,
            "duplicated_on_socket": duplicated,
            "same_message_under_two_cursors": stored_twice,
            "latency_ns": latencies,
        }

    def missing(self, phase: str, *, with_catch_up: bool) -> int:
        return sum(
            1
            for key in self.phase_keys(phase)
            if not self.on_socket.get(key) and not (with_catch_up and self.applied.get(key))
        )


class Client(ResumingClient):
    """One user's socket (bench.clients.ResumingClient), reporting to the tracker."""

    def __init__(self, tracker: Tracker, user_id: int, username: str, token: str, conv: int, server: int):
        super().__init__(user_id, username, token, server)
        self.tracker, self.conv = tracker, conv

    def on_frame(self, event: dict, arrived_ns: int) -> None:
        key = self.tracker.key_of(self, event)
        if key is not None:
            self.tracker.on_socket[key].append(arrived_ns)

    def on_apply(self, event: dict, via: str) -> None:
        key = self.tracker.key_of(self, event)
        if key is not None:
            self.tracker.applied[key].add(event["cursor"])
            self.tracker.applied_via[via] += 1

    def on_duplicate(self, event: dict) -> None:
        self.tracker.deduplicated_by_cursor += 1


@dataclasses.dataclass
class Pair:
    conv: int  # conversation id
    buyer: Client
    seller: Client
    next_seq: int = 0


# ---- The servers and the load -------------------------------------------------------------------


async def connect_storm(deployment: Deployment, clients: list[Client]) -> dict:
    """Every client at once (the storm row), the servers' RSS growth per socket, then whoever
    failed connects again so that the other rows have every client."""
    rss_before = {name: rss_bytes(pid) for name, pid in deployment.pids.items()}
    storm = await connect_clients(deployment, clients)
    await asyncio.sleep(0.5)
    grown = sum(rss_bytes(pid) - rss_before[name] for name, pid in deployment.pids.items())
    storm["kib_per_socket_on_the_servers"] = round(grown / len(clients) / 1024, 1)
    await connect_the_rest(deployment, clients, storm)
    return storm


async def connect_the_rest(deployment: Deployment, clients: list[Client], storm: dict) -> None:
    """After a storm some clients failed (its row records them); the other rows need every
    client, so those connect again, 20 at a time."""
    late = [c for c in clients if c.ws is None]
    if not late:
        return
    log(f"realtime: {len(late)} clients failed the storm; connecting them 20 at a time")
    storm["connected_afterwards"] = await connect_clients(deployment, late, at_once=20)
    if storm["connected_afterwards"]["connected"] != len(late):
        raise RuntimeError(f"clients cannot connect: {storm['connected_afterwards']['failures']}")


class Load:
    """Open-loop sends over the pairs, round robin; each from the sender's own server."""

    def __init__(self, tracker: Tracker, deployment: Deployment, pairs: list[Pair]):
        self.tracker, self.deployment, self.pairs = tracker, deployment, pairs
        self.turn = 0
        self.errors: collections.Counter = collections.Counter()
        self.start_lag: list[int] = []
        self.post_ns: list[int] = []

    async def _send(self, phase: str, pair: Pair, intended: int) -> None:
        seq = pair.next_seq
        pair.next_seq += 1
        sender = pair.buyer if seq % 2 == 0 else pair.seller
        pool = self.deployment.pools[sender.server % len(self.deployment.pools)]
        body = json.dumps(
            {"body": self.tracker.body(pair.conv, seq, intended), "client_id": str(uuid.uuid4())}
        )
        started = time.perf_counter_ns()
        self.start_lag.append(started - intended)
        try:
            path = f"/api/v1/conversations/{pair.conv}/messages"
            status, data = await pool.request("POST", path, sender.token, body.encode())
        except Exception as exc:
            self.errors[type(exc).__name__] += 1
            return
        self.post_ns.append(time.perf_counter_ns() - started)
        if status != 201:
            self.errors[f"HTTP {status}"] += 1
        elif b'"visible"' not in data:
            reason = json.loads(data).get("moderation_reason") or "?"
            self.errors[f"not visible (held by moderation: {reason[:80]})"] += 1
        else:
            self.tracker.accepted[(pair.conv, seq)] = (phase, intended)

    async def offer(self, phase: str, rate: float, seconds: float) -> dict:
        """Send rate*seconds messages, each at its intended time whatever came before."""
        self.start_lag, self.post_ns = [], []
        total = int(rate * seconds)
        interval = 1e9 / rate
        start = time.perf_counter_ns() + 20_000_000
        tasks: set[asyncio.Task] = set()
        sent = 0
        while sent < total:
            now = time.perf_counter_ns()
            due = min(total, int((now - start) / interval) + 1) if now >= start else 0
            while sent < due:
                pair = self.pairs[self.turn % len(self.pairs)]
                self.turn += 1
                task = asyncio.create_task(self._send(phase, pair, int(start + sent * interval)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            next_due = start + sent * interval
            await asyncio.sleep(max(0.0, (next_due - time.perf_counter_ns()) / 1e9))
        if tasks:
            await asyncio.gather(*tasks)
        return {
            "offered_per_s": rate,
            "seconds": seconds,
            "sent": total,
            "send_start_lag_ms": summarize_ns(self.start_lag),
            "http_post_ms": summarize_ns(self.post_ns),
        }


async def drain(tracker: Tracker, phase: str, seconds: float, *, with_catch_up: bool = False) -> float:
    """Wait until every accepted message of the phase arrived (or `seconds`); the wait in s."""
    started = time.monotonic()
    while time.monotonic() - started < seconds and tracker.missing(phase, with_catch_up=with_catch_up):
        await asyncio.sleep(0.05)
    return round(time.monotonic() - started, 2)


async def run_phase(
    phase: str, load: Load, tracker: Tracker, meter: CpuMeter, rate: float, seconds: float, drain_s: float
) -> dict:
    errors_before = collections.Counter(load.errors)
    before = meter.snapshot()
    offered = await load.offer(phase, rate, seconds)
    cpu = CpuMeter.between(before, meter.snapshot())
    waited = await drain(tracker, phase, drain_s)
    counted = tracker.count(phase, with_catch_up=False)
    latency = summarize_ns(counted.pop("latency_ns"))
    accepted_per_s = counted["accepted"] / seconds
    return {
        **offered,
        "delivery_ms": latency,
        **counted,
        "accepted_per_s": round(accepted_per_s, 1),
        "send_errors": dict(load.errors - errors_before),
        "drain_seconds": waited,
        "cpu": cpu,
        "server_cpu_ms_per_message": server_cpu_per_message(cpu, counted["accepted"]),
    }


def server_cpu_per_message(cpu: dict, messages: int) -> float | None:
    used = sum(v["cpu_seconds"] for k, v in cpu.items() if isinstance(v, dict) and k != "bench_client")
    return round(1000 * used / messages, 2) if messages else None


# ---- py-spy -------------------------------------------------------------------------------------

AREAS = {  # a sample counts for an area when any frame of its stack is in it
    "PostgreSQL driver (psycopg)": "/psycopg/",
    "Django ORM (django/db)": "/django/db/",
    "django-ninja": "/ninja/",
    "Django request/middleware": "/django/core/handlers/",
    "asgiref thread hops": "/asgiref/",
    "channels_redis": "/channels_redis/",
    "redis-py": "/redis/",
    "Celery/kombu (task queueing)": "/kombu/",
    "Twisted/daphne (server, websockets)": "/twisted/",
    "uvicorn": "/uvicorn/",
    "inbox app": f"{ROOT}/inbox/",
    "moderation app": f"{ROOT}/moderation/",
    "notifications app": f"{ROOT}/notifications/",
    "json": "/json/",
}


def py_spy_path() -> str | None:
    candidate = VENV_BIN / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def short_frame(frame: str) -> str:
    """'execute (…/site-packages/django/db/utils.py:103)' -> 'execute (django/db/utils.py)'."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", f"{ROOT}/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def summarize_profile(raw: str, top: int = 12) -> dict:
    """Collapsed stacks from `py-spy record -f raw` -> where the samples are."""
    own, inclusive, areas = collections.Counter(), collections.Counter(), collections.Counter()
    product = collections.Counter()  # our own functions (not the venv's), inclusive
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        own[short_frame(frames[-1])] += samples
        for key in {short_frame(f) for f in frames}:
            inclusive[key] += samples
        for key in {short_frame(f) for f in frames if f"{ROOT}/" in f and "/.venv/" not in f}:
            product[key] += samples
        for area, marker in AREAS.items():
            if marker in stack:
                areas[area] += samples

    def share(counter):
        return {k: round(100 * v / total, 1) for k, v in counter.most_common(top)} if total else {}

    return {
        "samples": total,
        "percent_by_area": share(areas),
        "percent_self": share(own),
        "percent_inclusive": share(inclusive),
        "percent_product_inclusive": share(product),
    }


async def profile(pid: int, seconds: float, out: Path) -> dict | None:
    """py-spy record (non-blocking) on a server process for `seconds`; None without py-spy."""
    tool = py_spy_path()
    if tool is None:
        return None
    argv = [tool, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", "200",
            "--format", "raw", "--output", str(out), "--nonblocking", "--full-filenames"]  # fmt: skip
    result = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not out.exists():
        return {"error": (result.stderr or result.stdout).strip()[-300:]}
    return summarize_profile(out.read_text())


# ---- Memory -------------------------------------------------------------------------------------


async def settle_rss(pid: int, seconds: float = 1.0) -> int | None:
    await asyncio.sleep(seconds)
    return rss_bytes(pid)


async def socket_memory(url: str, pid: int, clients: list[Client], cycles: int, *, echo: bool) -> dict:
    """RSS per idle socket (N sockets open minus before, / N), then `cycles` connects and drops."""
    import websockets

    # 100 handshakes in flight at most: one process, and this measures memory, not the storm
    # (daphne drops a handshake its app has not accepted within 5 s).
    slots = asyncio.Semaphore(100)

    async def open_all(clients=clients):
        sockets = []

        async def one(client: Client):
            async with slots:
                if echo:
                    ws = await websockets.connect(
                        ws_url(url, "/"), compression=None, ping_interval=None, open_timeout=30
                    )
                else:
                    ws = await websockets.connect(
                        ws_url(url), additional_headers={"Authorization": f"Bearer {client.token}"},
                        compression=None, ping_interval=None, open_timeout=30,
                    )  # fmt: skip
                    await asyncio.wait_for(ws.recv(), 30)  # hello: connected and subscribed
            sockets.append(ws)

        await asyncio.gather(*(one(c) for c in clients))
        return sockets

    async def close_all(sockets):
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

    # A few sockets first: what the first connection imports and caches is not per socket. Only a
    # few, or the next N would reuse the freed memory and read as free.
    await close_all(await open_all(clients[:5]))
    before = await settle_rss(pid)
    sockets = await open_all()
    idle = await settle_rss(pid)
    await close_all(sockets)
    after_first = await settle_rss(pid)
    for _ in range(cycles - 1):
        await close_all(await open_all())
    after_cycles = await settle_rss(pid)
    per_socket = (idle - before) / len(clients)
    return {
        "sockets": len(clients),
        "rss_before_mib": round(before / 2**20, 1),
        "rss_idle_mib": round(idle / 2**20, 1),
        "rss_after_first_drop_mib": round(after_first / 2**20, 1),
        "rss_after_cycles_mib": round(after_cycles / 2**20, 1),
        "cycles": cycles,
        "kib_per_socket": round(per_socket / 1024, 1),
        "growth_over_cycles_percent": round(100 * (after_cycles - after_first) / after_first, 1),
        "above_before_percent": round(100 * (after_cycles - before) / before, 1),
    }


async def echo_round_trip(url: str, count: int) -> dict:
    import websockets

    frame = json.dumps({"type": "message.created", "body": "x" * 200})
    times = []
    async with websockets.connect(ws_url(url, "/"), compression=None, ping_interval=None) as ws:
        for i in range(count + 20):
            started = time.perf_counter_ns()
            await ws.send(frame)
            await ws.recv()
            if i >= 20:
                times.append(time.perf_counter_ns() - started)
    return summarize_ns(times)


# ---- The rows -----------------------------------------------------------------------------------


def baseline_sums(baselines: dict) -> dict | None:
    try:
        parts = {
            "ws_echo_ms": baselines["ws_echo_ms"],
            "layer_hop_ms (pubsub)": baselines["layer_hop_ms"]["pubsub"],
            "db_insert_ms": baselines["db_insert_ms"],
        }
        return {
            "parts": {name: {"p50": v["p50"], "p99": v["p99"]} for name, v in parts.items()},
            "p50": round(sum(v["p50"] for v in parts.values()), 3),
            "p99": round(sum(v["p99"] for v in parts.values()), 3),
        }
    except (KeyError, TypeError):
        return None


def delivery_row(delivery: dict, sums: dict | None, clients: int) -> Row:
    d = delivery["delivery_ms"]
    r50 = ratio(d["p50"], sums["p50"]) if sums else None
    r99 = ratio(d["p99"], sums["p99"]) if sums else None
    met = None  # without baselines there is nothing to compare with
    if sums:
        met = d["p50"] is not None and r50 <= 2.0 and r99 <= 3.0
        met = met and delivery["lost"] == 0 and delivery["duplicated"] == 0
    base = f"(sum p50 {sums['p50']} / p99 {sums['p99']} ms)" if sums else "(no baselines: ratio n/a)"
    measured = (
        f"{clients} clients, {delivery['offered_per_s']:g} msg/s: p50 {d['p50']} ms = {r50}x, "
        f"p99 {d['p99']} ms = {r99}x {base}; lost {delivery['lost']}, duplicated {delivery['duplicated']}; "
        f"CPU {CpuMeter.shares(delivery['cpu'])}"
    )
    figures = {k: v for k, v in delivery.items()}
    figures.update(ratio_p50=r50, ratio_p99=r99, baseline_sum=sums)
    return Row(
        "delivery, send -> the recipient's socket, at 200 msg/s",
        "p50 <= 2x and p99 <= 3x (B-ws + B-layer pubsub + B-db)",
        measured,
        met,
        figures,
    )


def step_passes(step: dict) -> bool:
    p99 = step["delivery_ms"]["p99"]
    return (
        p99 is not None
        and p99 <= P99_LIMIT_MS
        and step["lost"] == 0
        and step["duplicated"] == 0
        and not step["send_errors"]
        and step["accepted"] >= 0.99 * step["sent"]
    )


async def run(ctx: Context) -> Result:
    sizes = QUICK if ctx.quick else FULL
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # children started from here inherit it
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    details: dict = {"sizes": dataclasses.asdict(sizes), "fd_limit": hard}
    tracker = Tracker(ctx.run_tag)
    n_pairs = sizes.clients // 2

    # The servers start while this process creates the users and conversations.
    product = asyncio.create_task(start_servers(ctx, 2))
    setup_started = time.monotonic()
    await asyncio.to_thread(setup_django, ctx.env)
    created = await asyncio.to_thread(create_pairs, n_pairs, ctx.run_tag)
    queue_before = await asyncio.to_thread(celery_queue_length, ctx.redis_url)
    pairs = []
    for index, (buyer, seller, conv) in enumerate(created):
        # Buyers on one process, their sellers on the other: every message crosses processes.
        pairs.append(
            Pair(
                conv,
                Client(tracker, buyer["id"], buyer["username"], buyer["token"], conv, index % 2),
                Client(tracker, seller["id"], seller["username"], seller["token"], conv, (index + 1) % 2),
            )
        )
    clients = [c for p in pairs for c in (p.buyer, p.seller)]
    deployment = Deployment(await product)
    details["setup_seconds"] = round(time.monotonic() - setup_started, 1)
    meter = CpuMeter(deployment.pids)
    rows: list[Row] = []
    try:
        # Connect storm: every client at once, on warm servers (one socket each served first).
        warm = [Client(tracker, 0, c.username, c.token, c.conv, c.server) for c in clients[:2]]
        await connect_clients(deployment, warm)
        await close_clients(warm)
        log(f"realtime: connect storm, {len(clients)} clients")
        storm = await connect_storm(deployment, clients)
        load = Load(tracker, deployment, pairs)

        log(f"realtime: delivery at {sizes.rate:g} msg/s for {sizes.delivery_seconds:g} s")
        await run_phase("warmup", load, tracker, meter, 50, 1, sizes.drain_seconds)
        delivery = await run_phase(
            "delivery", load, tracker, meter, sizes.rate, sizes.delivery_seconds, sizes.drain_seconds
        )
        rows.append(delivery_row(delivery, baseline_sums(ctx.baselines), len(clients)))

        log("realtime: sustained rate, stepping up")
        steps, best, profiles = [], None, {}
        for rate in sizes.steps:
            profiled = asyncio.create_task(
                profile(
                    deployment.pids[deployment.names[0]],
                    sizes.step_seconds,
                    ctx.scratch / f"spy-{rate:g}.txt",
                )
            )
            step = await run_phase(
                f"step{rate:g}", load, tracker, meter, rate, sizes.step_seconds, sizes.drain_seconds
            )
            profiles[rate] = await profiled
            step["passed"] = step_passes(step)
            steps.append(step)
            log(f"realtime: {rate:g} msg/s -> p99 {step['delivery_ms']['p99']} ms, lost {step['lost']}")
            if not step["passed"]:
                break
            best = step
            await asyncio.sleep(0.5)
        rows.append(sustained_row(steps, best, profiles))

        # Under what the servers sustain, or the backlog (not the churn) would decide the result.
        churn_rate = min(sizes.churn_rate, best["offered_per_s"] / 2 if best else 10)
        log(f"realtime: churn for {sizes.churn_seconds:g} s at {churn_rate:g} msg/s")
        churn = await churn_phase(load, tracker, meter, sizes, clients, deployment, churn_rate)
        rows.append(churn_row(churn, sizes))
        details["client_errors"] = dict(sum((c.errors for c in clients), collections.Counter()))
        await close_clients(clients)
        deployment.close()
        for process in deployment.processes:
            ctx.group.stop(process)

        rows.append(storm_row(storm, len(clients)))
        try:
            memory, daphne_echo_ms = await memory_phase(ctx, clients, sizes)
            rows += memory
            log("realtime: the same delivery run on uvicorn")
            rows.append(
                await uvicorn_comparison(ctx, tracker, pairs, clients, sizes, delivery, daphne_echo_ms, storm)
            )
        except Exception as exc:  # the rows measured so far still count
            log(f"realtime: failed after the storm: {type(exc).__name__}: {exc}")
            rows.append(failed_row(exc))
    finally:
        deployment.close()
        dropped = await asyncio.to_thread(drop_queued_tasks, ctx.redis_url, queue_before)
        details["celery_tasks_dropped"] = dropped
    details["storm"] = storm
    details["dedupe"] = {
        "deduplicated_by_cursor": tracker.deduplicated_by_cursor,
        "applied_via": dict(tracker.applied_via),
    }
    return Result(rows, details)


async def memory_phase(ctx: Context, clients: list[Client], sizes: Sizes) -> tuple[list[Row], dict]:
    """Idle memory per socket on one daphne process (product, then the bare echo app, B-wsmem),
    and the echo round trip on the same daphne for the uvicorn comparison."""
    log("realtime: idle socket memory (product, then the bare echo app)")
    memory_servers = await asyncio.gather(
        start_servers(ctx, 1, label="daphne-mem"),
        start_servers(ctx, 1, app="bench.stack:ws_echo_app", label="daphne-echo"),
    )
    (mem_url, mem_process), = memory_servers[0].values()  # fmt: skip
    (echo_url, echo_process), = memory_servers[1].values()  # fmt: skip
    try:
        product_memory = await socket_memory(
            mem_url, mem_process.pid, clients, sizes.memory_cycles, echo=False
        )
        echo_memory = await socket_memory(echo_url, echo_process.pid, clients, 1, echo=True)
        daphne_echo_ms = await echo_round_trip(echo_url, 200 if ctx.quick else 1000)
    finally:
        ctx.group.stop(mem_process)
        ctx.group.stop(echo_process)
    return memory_rows(product_memory, echo_memory, sizes), daphne_echo_ms


def failed_row(exc: Exception) -> Row:
    return Row(
        "(the phases after the storm)", "memory and the uvicorn comparison measured",
        f"failed: {type(exc).__name__}: {str(exc)[:200]}", False, {"error": repr(exc)},
    )  # fmt: skip


def sustained_row(steps: list[dict], best: dict | None, profiles: dict) -> Row:
    best_rate = best["offered_per_s"] if best else None
    failed = steps[-1] if steps and not steps[-1]["passed"] else None
    parts = []
    if best:
        parts.append(
            f"highest passing {best_rate:g} msg/s (p99 {best['delivery_ms']['p99']} ms; "
            f"CPU {CpuMeter.shares(best['cpu'])})"
        )
    else:
        parts.append("no step passed")
    if failed:
        parts.append(
            f"{failed['offered_per_s']:g} msg/s failed: accepted {failed['accepted_per_s']:g}/s, "
            f"p99 {failed['delivery_ms']['p99']} ms, lost {failed['lost']}, "
            f"errors {failed['send_errors'] or 0} "
            f"(CPU {CpuMeter.shares(failed['cpu'])}; server CPU {failed['server_cpu_ms_per_message']} ms/msg)"
        )
    limit_step = failed or (steps[-1] if steps else None)
    spy = profiles.get(limit_step["offered_per_s"]) if limit_step else None
    if spy and spy.get("percent_by_area"):
        top = ", ".join(f"{area} {pct}%" for area, pct in list(spy["percent_by_area"].items())[:5])
        parts.append(f"daphne-1 at {limit_step['offered_per_s']:g}/s (py-spy, % of samples): {top}")
    figures = {
        "best_rate_per_s": best_rate,
        "steps": [{k: v for k, v in s.items() if k != "cpu"} | {"cpu": s["cpu"]} for s in steps],
        "profiles": {f"{rate:g}": spy for rate, spy in profiles.items()},
    }
    return Row(
        "sustained stored-and-delivered messages/s with p99 <= 50 ms",
        ">= 1,000/s with two daphne processes",
        "; ".join(parts),
        best_rate is not None and best_rate >= 1000,
        figures,
    )


async def churn_phase(
    load: Load,
    tracker: Tracker,
    meter: CpuMeter,
    sizes: Sizes,
    clients: list[Client],
    deployment: Deployment,
    rate: float,
) -> dict:
    """Send for churn_seconds while clients drop and reconnect; a reconnecting client resumes
    from its cursor (hello, then GET /api/v1/events?since=)."""
    per_round = max(1, round(len(clients) * sizes.churn_fraction))
    rounds = int(sizes.churn_seconds / sizes.churn_every_seconds)
    connect_ns, failures, gave_up = [], collections.Counter(), []
    turn = 0

    async def reconnect(client: Client, gap: float) -> None:
        await client.close()
        await asyncio.sleep(gap)  # what is sent meanwhile can only come from the event log
        index = client.server % len(deployment.urls)
        for attempt in range(6):  # like the page: try again, backing off
            try:
                connect_ns.append(
                    await client.connect(ws_url(deployment.urls[index]), deployment.pools[index])
                )
                return
            except Exception as exc:
                failures[type(exc).__name__] += 1
                await asyncio.sleep(0.25 * 2**attempt)
        gave_up.append(client.username)

    async def churn() -> None:
        nonlocal turn
        started = time.monotonic()
        for round_index in range(1, rounds + 1):
            await asyncio.sleep(
                max(0.0, started + round_index * sizes.churn_every_seconds - time.monotonic())
            )
            batch = [clients[(turn + i) % len(clients)] for i in range(per_round)]
            turn += per_round
            await asyncio.gather(*(reconnect(c, 0.05 + 0.2 * (i % 4) / 3) for i, c in enumerate(batch)))

    errors_before = collections.Counter(load.errors)
    before = meter.snapshot()
    offered, _ = await asyncio.gather(load.offer("churn", rate, sizes.churn_seconds), churn())
    cpu = CpuMeter.between(before, meter.snapshot())
    waited = await drain(tracker, "churn", sizes.drain_seconds, with_catch_up=True)
    await asyncio.gather(
        *(c.catching_up for c in clients if c.catching_up is not None), return_exceptions=True
    )
    counted = tracker.count("churn", with_catch_up=True)
    latency = summarize_ns(counted.pop("latency_ns"))
    return {
        **offered,
        "delivery_ms": latency,
        **counted,
        "caught_up": counted["accepted"] - counted["lost"] - counted["on_socket"],
        "reconnects": rounds * per_round,
        "reconnect_attempts_failed": dict(failures),
        "clients_that_gave_up": len(gave_up),
        "reconnect_ms": summarize_ns(connect_ns),
        "send_errors": dict(load.errors - errors_before),
        "drain_seconds": waited,
        "cpu": cpu,
    }


def churn_row(churn: dict, sizes: Sizes) -> Row:
    every = f"{100 * sizes.churn_fraction:g}% of clients every {sizes.churn_every_seconds:g} s"
    measured = (
        f"{churn['seconds']:g} s at {churn['offered_per_s']:g} msg/s, "
        f"{churn['reconnects']} reconnects ({every}): "
        f"{churn['accepted']} accepted, lost {churn['lost']}, duplicated {churn['duplicated']} "
        f"({churn['on_socket']} over the socket, {churn['caught_up']} caught up from the event log); "
        f"p99 {churn['delivery_ms']['p99']} ms"
    )
    if churn["reconnect_attempts_failed"] or churn["send_errors"]:
        measured += (
            f"; failed attempts {churn['reconnect_attempts_failed'] or 0}, "
            f"gave up {churn['clients_that_gave_up']}, send errors {churn['send_errors'] or 0}"
        )
    met = churn["accepted"] > 0 and churn["lost"] == 0 and churn["duplicated"] == 0
    return Row(
        "loss during a 10-minute run with 10% of clients reconnecting each minute",
        "0 lost, 0 duplicated",
        measured,
        met,
        churn,
    )


def memory_rows(product: dict, echo: dict, sizes: Sizes) -> list[Row]:
    per, base = product["kib_per_socket"], echo["kib_per_socket"]
    times = ratio(per, base) if base and base > 0 else None
    measured = (
        f"{per} KiB per idle socket ({product['sockets']} sockets; B-wsmem {base} KiB, {times}x); "
        f"RSS after {product['cycles']} connect/drop cycles "
        f"{product['growth_over_cycles_percent']:+}% vs after "
        f"the first ({product['above_before_percent']:+}% vs before any socket)"
    )
    met = per <= 150 and product["growth_over_cycles_percent"] <= 5
    return [
        Row(
            "B-wsmem: RSS per idle websocket, bare ASGI echo app on daphne",
            "(baseline)",
            f"{base} KiB per socket ({echo['sockets']} sockets)",
            None,
            echo,
        ),
        Row(
            "idle websocket memory",
            "<= 150 KiB each; RSS after 10 cycles of connect+drop within 5% of after the first",
            measured,
            met,
            {**product, "ratio_to_b_wsmem": times},
        ),
    ]


def storm_row(storm: dict, clients: int) -> Row:
    c = storm["connect_ms"]
    met = storm["connected"] == clients and not storm["failures"] and storm["all_seconds"] <= 5
    return Row(
        "connect storm",
        f"{clients} clients connected and subscribed (hello) in <= 5 s, 0 failures",
        f"{storm['connected']}/{clients} in {storm['all_seconds']} s, failures {storm['failures'] or 0}; "
        f"connect p50 {c['p50']} ms, p99 {c['p99']} ms",
        met,
        storm,
    )


async def uvicorn_comparison(
    ctx: Context, tracker: Tracker, pairs: list[Pair], clients: list[Client], sizes: Sizes,
    daphne_delivery: dict, daphne_echo_ms: dict, daphne_storm: dict,
) -> Row:  # fmt: skip
    """The product on two uvicorn processes: the same clients and delivery run as on daphne."""
    product, echo = await asyncio.gather(
        start_servers(ctx, 2, label="uvicorn", server="uvicorn"),
        start_servers(ctx, 1, app="bench.stack:ws_echo_app", label="uvicorn-echo", server="uvicorn"),
    )
    (echo_url, echo_process), = echo.values()  # fmt: skip
    uvicorn_echo_ms = await echo_round_trip(echo_url, 200 if ctx.quick else 1000)
    ctx.group.stop(echo_process)
    deployment = Deployment(product)
    try:
        storm = await connect_storm(deployment, clients)
        load = Load(tracker, deployment, pairs)
        meter = CpuMeter(deployment.pids)
        await run_phase("uvicorn-warmup", load, tracker, meter, 50, 1, sizes.drain_seconds)
        delivery = await run_phase(
            "uvicorn", load, tracker, meter, sizes.rate, sizes.delivery_seconds, sizes.drain_seconds
        )
        await close_clients(clients)
    finally:
        deployment.close()
    d, u = daphne_delivery, delivery
    measured = (
        f"delivery at {sizes.rate:g} msg/s: daphne p50 {d['delivery_ms']['p50']} / "
        f"p99 {d['delivery_ms']['p99']} ms, "
        f"{d['server_cpu_ms_per_message']} ms server CPU/msg; uvicorn p50 {u['delivery_ms']['p50']} / p99 "
        f"{u['delivery_ms']['p99']} ms, {u['server_cpu_ms_per_message']} ms/msg (lost {u['lost']}); "
        f"echo p50 daphne {daphne_echo_ms['p50']} / uvicorn {uvicorn_echo_ms['p50']} ms; "
        f"storm daphne {daphne_storm['all_seconds']} / uvicorn {storm['all_seconds']} s; "
        f"KiB/socket daphne {daphne_storm['kib_per_socket_on_the_servers']} / "
        f"uvicorn {storm['kib_per_socket_on_the_servers']}"
    )
    return Row(
        "daphne vs uvicorn (the same delivery run, the product served by each)",
        "(comparison: the product stays on what serves best)",
        measured,
        None,
        {
            "uvicorn_delivery": delivery,
            "uvicorn_storm": storm,
            "echo_round_trip_ms": {"daphne": daphne_echo_ms, "uvicorn": uvicorn_echo_ms},
        },
    )
