"""Soak (L1): as many websocket clients as one daphne process holds, messages flowing for
minutes; delivery, loss, and whether daphne's and Redis's memory grow.

1. Ramp (unless --clients is given): connect clients in steps (500, 1,000, 2,000, 4,000 … up
   to --max-clients), buyer/seller pairs with a conversation each, and at each step send at
   --rate msg/s for --probe-seconds; a step passes with every client connected, 0 lost and
   delivery p99 <= 1 s. The last passing step is the number of clients the soak keeps.
2. Soak: the same rate for --minutes with those clients connected. Delivery is measured from
   each send's intended time to the recipient's socket (open loop: a slow server shows as
   latency, not as a slower sender). Reported: delivery p50/p99 (overall and per minute),
   lost, daphne RSS at start and end, Redis used_memory before and after.

    python -m bench.soak [--clients N] [--minutes 10] [--rate 10] [--max-clients 8000]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import resource
import time
import uuid

from bench.clients import Deployment, ResumingClient, as_letters, connect_clients, create_pairs, from_letters
from bench.stack import (
    Context,
    CpuMeter,
    Result,
    Row,
    celery_queue_length,
    drop_queued_tasks,
    log,
    rss_bytes,
    run_standalone,
    setup_django,
    start_servers,
    summarize_ns,
)

NAME = "soak"
TITLE = "Soak: clients one daphne holds, delivery and memory over minutes"

P99_LIMIT_MS = 1000.0
SETTLE_SECONDS = 30.0
STEPS = (500, 1000, 2000, 4000, 8000, 16000)


class Probe:
    """Sends (index -> intended time) and their first arrival on the recipient's socket."""

    def __init__(self, run_tag: str):
        self.prefix = f"soak {as_letters(run_tag)} k"
        self.intended: dict[int, int] = {}
        self.accepted: dict[int, str] = {}  # index -> phase
        self.arrived: dict[int, int] = {}
        self.caught_up: set[int] = set()
        self.errors: collections.Counter = collections.Counter()
        self.next_index = 0

    def index_of(self, client: ResumingClient, event: dict) -> int | None:
        if event.get("type") != "message.created":
            return None
        message = event.get("message") or {}
        body = message.get("body", "")
        if message.get("sender") == client.username or not body.startswith(self.prefix):
            return None
        return from_letters(body[len(self.prefix) :])

    def count(self, phase: str) -> dict:
        keys = [i for i, p in self.accepted.items() if p == phase]
        latencies = [self.arrived[i] - self.intended[i] for i in keys if i in self.arrived]
        lost = sum(1 for i in keys if i not in self.arrived and i not in self.caught_up)
        return {"accepted": len(keys), "lost": lost, "delivery_ms": summarize_ns(latencies)}


class SoakClient(ResumingClient):
    def __init__(self, probe: Probe, user: dict, server: int = 0):
        super().__init__(user["id"], user["username"], user["token"], server)
        self.probe = probe

    def on_frame(self, event: dict, arrived_ns: int) -> None:
        index = self.probe.index_of(self, event)
        if index is not None and index not in self.probe.arrived:
            self.probe.arrived[index] = arrived_ns

    def on_apply(self, event: dict, via: str) -> None:
        if via == "catch_up":
            index = self.probe.index_of(self, event)
            if index is not None:
                self.probe.caught_up.add(index)


async def offer(
    probe: Probe, deployment: Deployment, pairs: list, phase: str, rate: float, seconds: float
) -> None:
    """Open loop: rate*seconds sends over the pairs, each at its intended time."""
    pool = deployment.pools[0]
    tasks: set[asyncio.Task] = set()

    async def send(index: int, intended: int) -> None:
        buyer, seller, conv = pairs[index % len(pairs)]
        sender = buyer if (index // len(pairs)) % 2 == 0 else seller
        body = json.dumps({"body": f"{probe.prefix}{as_letters(index)}", "client_id": str(uuid.uuid4())})
        probe.intended[index] = intended
        try:
            status, data = await pool.request(
                "POST", f"/api/v1/conversations/{conv}/messages", sender["token"], body.encode(), timeout=120
            )
        except Exception as exc:
            probe.errors[type(exc).__name__] += 1
            return
        if status == 201 and b'"visible"' in data:
            probe.accepted[index] = phase
        else:
            probe.errors[f"HTTP {status}"] += 1

    total = int(rate * seconds)
    start = time.perf_counter_ns() + 20_000_000
    for n in range(total):
        intended = start + int(n * 1e9 / rate)
        await asyncio.sleep(max(0.0, (intended - time.perf_counter_ns()) / 1e9))
        index = probe.next_index
        probe.next_index += 1
        task = asyncio.create_task(send(index, intended))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)


async def drain(probe: Probe, phase: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and probe.count(phase)["lost"]:
        await asyncio.sleep(0.1)


def redis_used_memory(redis_url: str) -> int:
    import redis

    return int(redis.Redis.from_url(redis_url).info("memory")["used_memory"])


class Population:
    """Pairs and their clients, created as the ramp needs them."""

    def __init__(self, ctx: Context, probe: Probe, deployment: Deployment):
        self.ctx, self.probe, self.deployment = ctx, probe, deployment
        self.pairs: list = []
        self.clients: list[SoakClient] = []
        self.created = 0

    async def grow_to(self, count: int) -> dict:
        pairs_needed = count // 2 - len(self.pairs)
        if pairs_needed > 0:
            log(f"soak: creating {pairs_needed} pairs")
            tag = f"{self.ctx.run_tag}x{self.created}"
            new = await asyncio.to_thread(create_pairs, pairs_needed, tag, prefix="sk")
            self.created += 1
            self.pairs += new
            fresh = [SoakClient(self.probe, user) for buyer, seller, _c in new for user in (buyer, seller)]
        else:
            fresh = []
        log(f"soak: connecting {len(fresh)} more clients ({count} in all)")
        result = await connect_clients(self.deployment, fresh, at_once=100)
        self.clients += fresh
        return result


async def run(
    ctx: Context, clients: int | None = None, minutes: float = 10.0, rate: float = 10.0,
    max_clients: int = 8000, probe_seconds: float = 15.0,
) -> Result:  # fmt: skip
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # the daphne child inherits it
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if ctx.quick:
        clients, minutes, probe_seconds = clients or 200, min(minutes, 0.5), 5.0
    redis_before = await asyncio.to_thread(redis_used_memory, ctx.redis_url)
    product = asyncio.create_task(start_servers(ctx, 1))
    await asyncio.to_thread(setup_django, ctx.env)
    queue_before = await asyncio.to_thread(celery_queue_length, ctx.redis_url)
    deployment = Deployment(await product)
    pid = deployment.pids[deployment.names[0]]
    meter = CpuMeter(deployment.pids)
    probe = Probe(ctx.run_tag)
    people = Population(ctx, probe, deployment)
    # Each socket costs a descriptor here and one in daphne.
    limit = min(max_clients, hard - 500)
    steps, held = [], None
    try:
        rss_idle = rss_bytes(pid)
        for step in [clients] if clients else [s for s in STEPS if s <= limit]:
            connected = await people.grow_to(step)
            phase = f"ramp{step}"
            errors_before = collections.Counter(probe.errors)
            log(f"soak: {step} clients, {rate:g} msg/s for {probe_seconds:g} s")
            await offer(probe, deployment, people.pairs, phase, rate, probe_seconds)
            await drain(probe, phase, 10)
            counted = probe.count(phase)
            counted.update(
                clients=step,
                connect=connected,
                send_errors=dict(probe.errors - errors_before),
                rss_mib=round(rss_bytes(pid) / 2**20, 1),
            )
            p99 = counted["delivery_ms"]["p99"]
            counted["failed_because"] = [
                reason
                for reason, failed in (
                    (f"connect failures {connected['failures']}", connected["failures"]),
                    (f"lost {counted['lost']}", counted["lost"]),
                    (f"send errors {counted['send_errors']}", counted["send_errors"]),
                    (f"p99 {p99} ms > {P99_LIMIT_MS:g} ms", p99 is None or p99 > P99_LIMIT_MS),
                )
                if failed
            ]
            counted["passed"] = not counted["failed_because"]
            steps.append(counted)
            log(
                f"soak: {step} clients -> p99 {p99} ms, lost {counted['lost']}, "
                f"connect failures {connected['failures']}"
            )
            if not counted["passed"] and not clients:
                break
            held = step  # with --clients, the soak runs at that count whatever the probe said
        if held is None:
            raise RuntimeError(f"no step passed: {steps}")
        # The soak keeps the clients of the last passing step. The server is still working
        # through the others' disconnects after they closed: a settling period of sending, not
        # counted, keeps that out of the soak's first minute.
        extra = people.clients[held:]
        await asyncio.gather(*(c.close() for c in extra))
        people.clients, people.pairs = people.clients[:held], people.pairs[: held // 2]
        if extra:
            log(f"soak: {len(extra)} clients closed; settling for {SETTLE_SECONDS:g} s")
            await offer(probe, deployment, people.pairs, "settle", rate, SETTLE_SECONDS)
            await drain(probe, "settle", 10)
        rss_start = rss_bytes(pid)
        redis_start = await asyncio.to_thread(redis_used_memory, ctx.redis_url)
        log(f"soak: {held} clients, {rate:g} msg/s for {minutes:g} min")
        before = meter.snapshot()
        per_minute = []
        for minute in range(max(1, round(minutes))):
            seconds = 60 * min(1.0, minutes - minute) if minutes < 1 else 60
            await offer(probe, deployment, people.pairs, f"soak{minute}", rate, seconds)
            counted = probe.count(f"soak{minute}")
            per_minute.append(
                {
                    "minute": minute + 1,
                    "p99_ms": counted["delivery_ms"]["p99"],
                    "rss_mib": round(rss_bytes(pid) / 2**20, 1),
                }
            )
            log(
                f"soak: minute {minute + 1}: p99 {counted['delivery_ms']['p99']} ms, "
                f"RSS {per_minute[-1]['rss_mib']} MiB"
            )
        cpu = CpuMeter.between(before, meter.snapshot())
        for minute in range(len(per_minute)):
            await drain(probe, f"soak{minute}", 10)
        rss_end = rss_bytes(pid)
        redis_end = await asyncio.to_thread(redis_used_memory, ctx.redis_url)
        still_connected = sum(
            1 for c in people.clients if c.ws is not None and c.reader and not c.reader.done()
        )
        await asyncio.gather(*(c.close() for c in people.clients))
    finally:
        deployment.close()
        await asyncio.to_thread(drop_queued_tasks, ctx.redis_url, queue_before)
    await asyncio.sleep(3)
    redis_after = await asyncio.to_thread(redis_used_memory, ctx.redis_url)
    keys = [i for i, p in probe.accepted.items() if p.startswith("soak")]
    latencies = [probe.arrived[i] - probe.intended[i] for i in keys if i in probe.arrived]
    lost = sum(1 for i in keys if i not in probe.arrived and i not in probe.caught_up)
    delivery = summarize_ns(latencies)
    soak_errors = dict(probe.errors)
    growth = round(100 * (rss_end - rss_start) / rss_start, 1)
    mib = lambda b: round(b / 2**20, 1)  # noqa: E731
    figures = {
        "clients": held,
        "minutes": minutes,
        "rate_per_s": rate,
        "accepted": len(keys),
        "lost": lost,
        "delivery_ms": delivery,
        "per_minute": per_minute,
        "still_connected_at_end": still_connected,
        "daphne_rss_mib": {
            "idle": mib(rss_idle),
            "start": mib(rss_start),
            "end": mib(rss_end),
            "growth_percent": growth,
        },
        "redis_used_memory_mib": {
            "before_the_run": mib(redis_before),
            "soak_start": mib(redis_start),
            "soak_end": mib(redis_end),
            "after_the_clients_left": mib(redis_after),
        },
        "send_errors_whole_run": soak_errors,
        "ramp": steps,
        "cpu": cpu,
        "fd_limit": hard,
    }
    failed_step = steps[-1] if steps and not steps[-1]["passed"] else None
    ramp_text = ", ".join(
        f"{s['clients']}: p99 {s['delivery_ms']['p99']} ms, lost {s['lost']}, connect failures "
        f"{s['connect']['failures'] or 0}"
        + (" (passed)" if s["passed"] else f" (failed: {'; '.join(s['failed_because'])})")
        for s in steps
    )
    rows = [
        Row(
            "L1 ramp: websocket clients one daphne process holds",
            f"every client connected, 0 lost, delivery p99 <= {P99_LIMIT_MS:g} ms at {rate:g} msg/s",
            f"{held} clients held; steps: {ramp_text}"
            + ("" if failed_step else f" (stopped at --max-clients {max_clients} or the fd limit)"),
            None,
            {"steps": steps},
        ),
        Row(
            "L1 soak: delivery and memory",
            "delivery p99 < 500 ms, 0 lost, daphne RSS growth < 10%, Redis memory flat",
            f"{held} clients, {rate:g} msg/s for {minutes:g} min: {len(keys)} accepted, lost {lost}, "
            f"delivery p50 {delivery['p50']} ms, p99 {delivery['p99']} ms; daphne RSS {mib(rss_start)} -> "
            f"{mib(rss_end)} MiB ({growth:+}%); Redis used_memory {mib(redis_before)} MiB before, "
            f"{mib(redis_start)} -> {mib(redis_end)} MiB during, {mib(redis_after)} MiB after; "
            f"{still_connected}/{held} still connected; CPU {CpuMeter.shares(cpu)}",
            lost == 0
            and delivery["p99"] is not None
            and delivery["p99"] < 500
            and growth < 10
            and still_connected == held,
            figures,
        ),
    ]
    return Result(rows, {})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, help="skip the ramp: soak with this many clients")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak (default 10)")
    parser.add_argument("--rate", type=float, default=10.0, help="msg/s during the ramp and the soak (10)")
    parser.add_argument("--max-clients", type=int, default=8000, help="the ramp stops here (default 8000)")
    parser.add_argument("--probe-seconds", type=float, default=15.0, help="sending at each ramp step (15)")
    parser.add_argument("--quick", action="store_true", help="200 clients, 30 s")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    return run_standalone(
        NAME, run, quick=args.quick, keep_logs=args.keep_logs, clients=args.clients, minutes=args.minutes,
        rate=args.rate, max_clients=args.max_clients, probe_seconds=args.probe_seconds,
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
