"""Redis or PostgreSQL going away while people send (R4 and R6 of ../shared/research/reliability.md).

    python -m bench.faults redis-down      # Redis away from t=15 s to t=45 s of a 60 s run
    python -m bench.faults postgres-down   # PostgreSQL away from t=10 s to t=20 s of a 40 s run

The real stack: two daphne processes, one Celery worker and the outbox relay
(`manage.py relay_outbox`), reaching PostgreSQL and Redis (channel layer, cache, broker) through
fault proxies (bench/faultproxy.py) that the script takes down and brings back; the machine's
services are never touched. Buyer/seller pairs, one conversation each, keep a websocket open
and resume from their cursor when it drops (GET /api/v1/events?since=, as static/inbox/live.js
does); messages go out open loop at a steady rate, each with its client_id. A send refused
(5xx or no answer) is retried with the same client_id after its Retry-After, as a client would.
A few pairs have their seller offline, so their messages make notifications (email digests)
that go through the outbox and the worker.

Measured: messages intended / stored (exactly once each), send latency during the outage and
the answers' status codes, time from the service's return to the first live frame (and until
every client had one), each client's transcript against the database after catching up, and
notifications: delivery rows per notification and channel (at most one) and outbox entries left.
JSON on stdout, a summary on stderr. Env: DATABASE_URL (default bench_inbox), REDIS_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from bench.clients import Deployment, ResumingClient, create_pairs
from bench.faultproxy import FaultProxy
from bench.stack import (
    CELERY,
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    PYTHON,
    Context,
    ProcessGroup,
    bench_env,
    log,
    machine_info,
    manage,
    redact,
    setup_django,
    start_servers,
    summarize_ns,
)

SCENARIOS = {
    # service, run seconds, down at, down for
    "redis-down": ("redis", 60.0, 15.0, 30.0),
    "postgres-down": ("postgres", 40.0, 10.0, 10.0),
}
SEND_ANSWER_TARGET_S = 1.0
LIVE_AGAIN_TARGET_S = 10.0


def now_ns() -> int:
    return time.perf_counter_ns()


# ---- Clients -------------------------------------------------------------------------------------


class Tab(ResumingClient):
    """One user's tab (bench.clients.ResumingClient, staying connected like the page), counting
    what it applied per message and when live message frames arrived."""

    def __init__(self, user: dict, server: int):
        super().__init__(user["id"], user["username"], user["token"], server)
        self.applied: dict[int, int] = {}  # message id -> times applied (message.created)
        self.live_frames_ns: list[int] = []  # arrival of message.created frames on the socket
        self.ready = asyncio.Event()
        self.task: asyncio.Task | None = None

    def on_frame(self, event: dict, arrived_ns: int) -> None:
        if event.get("type") == "message.created" and event.get("cursor") is not None:
            self.live_frames_ns.append(arrived_ns)

    def on_apply(self, event: dict, via: str) -> None:
        if event.get("type") == "message.created":
            message_id = event["message"]["id"]
            self.applied[message_id] = self.applied.get(message_id, 0) + 1

    def start(self, deployment: Deployment) -> None:
        url, pool = deployment.route(self)
        self.task = asyncio.create_task(self.keep_connected(url, pool, connected=self.ready))

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        await self.close()

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


class Run:
    def __init__(self, urls: list[str]):
        import httpx

        self.urls = urls
        self.http = [
            httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=100), timeout=30)
            for url in urls
        ]
        self.sends: list[dict] = []
        self.down_ns: int | None = None
        self.up_ns: int | None = None
        self.start_ns = now_ns()

    def seconds(self, ns: int | None) -> float | None:
        return None if ns is None else round((ns - self.start_ns) / 1e9, 3)

    async def close(self) -> None:
        for client in self.http:
            await client.aclose()


async def send_one(run: Run, pair: dict, seq: int, intended_ns: int) -> None:
    """One message: sent, and retried with the same client_id while it is refused."""
    sender = pair["buyer"] if seq % 2 == 0 else pair["seller"]
    record = {
        "pair": pair["index"],
        "seq": seq,
        "client_id": str(uuid.uuid4()),
        "intended_ns": intended_ns,
        "attempts": [],  # (status or error, seconds, sent at ns)
        "final": None,
        "message_id": None,
    }
    run.sends.append(record)
    body = {"body": f"fault run pair {pair['index']} message {seq}", "client_id": record["client_id"]}
    path = f"/api/v1/conversations/{pair['conv']}/messages"
    for _attempt in range(20):
        started = now_ns()
        wait = 1.0
        try:
            response = await run.http[sender.server].post(path, json=body, headers=sender.auth, timeout=30)
            status = response.status_code
            outcome = status
            if status in (200, 201):
                record["message_id"] = response.json()["id"]
                record["visible"] = response.json()["status"] == "visible"
            elif status == 503:
                record["error_body"] = response.json()
                wait = float(response.headers.get("Retry-After", 1))
        except Exception as exc:
            status, outcome = None, type(exc).__name__
        record["attempts"].append((outcome, (now_ns() - started) / 1e9, started))
        if status is not None and status < 500:
            record["final"] = status
            return
        await asyncio.sleep(wait)
    record["final"] = "gave up"


async def offer_load(run: Run, pairs: list[dict], rate: float, seconds: float, tasks: set) -> None:
    interval = 1e9 / rate
    start = now_ns()
    total = int(rate * seconds)
    seqs = collections.Counter()
    for n in range(total):
        due = start + n * interval
        delay = (due - now_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        pair = pairs[n % len(pairs)]
        seq = seqs[pair["index"]]
        seqs[pair["index"]] += 1
        task = asyncio.create_task(send_one(run, pair, seq, int(due)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


# ---- Setup and checks (Django in this process, reaching the services directly) -------------------


def database_state(conversation_ids: list[int], after_id: int) -> dict:
    from inbox.models import Message
    from notifications.models import Delivery, Notification
    from outbox.models import Entry

    messages = list(
        Message.objects.filter(conversation_id__in=conversation_ids, pk__gt=after_id).values(
            "pk", "conversation_id", "sender_id", "client_id", "status"
        )
    )
    notifications = list(
        Notification.objects.filter(dedupe_key__in=[f"message:{m['pk']}" for m in messages]).values(
            "pk", "fanned_out_at"
        )
    )
    deliveries = collections.Counter(
        (row["notification_id"], row["channel"])
        for row in Delivery.objects.filter(notification_id__in=[n["pk"] for n in notifications]).values(
            "notification_id", "channel"
        )
    )
    by_status = collections.Counter(
        status
        for status in Delivery.objects.filter(
            notification_id__in=[n["pk"] for n in notifications]
        ).values_list("status", flat=True)
    )
    return {
        "messages": messages,
        "notifications": len(notifications),
        "notifications_not_fanned_out": sum(1 for n in notifications if n["fanned_out_at"] is None),
        "deliveries": sum(deliveries.values()),
        "deliveries_by_status": dict(by_status),
        "deliveries_by_channel": dict(collections.Counter(channel for _n, channel in deliveries)),
        "max_deliveries_per_notification_channel": max(deliveries.values(), default=0),
        "outbox_entries_left": Entry.objects.count(),
    }


def last_message_id() -> int:
    from inbox.models import Message

    return Message.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def purge_broker(redis_url: str) -> None:
    """Tasks a previous run left in this Redis database's queue would reach this run's worker."""
    import redis

    redis.Redis.from_url(redis_url).delete("celery", "unacked", "unacked_index")


# ---- The run --------------------------------------------------------------------------------------


async def scenario(name: str, args) -> dict:
    service, seconds, down_at, down_for = SCENARIOS[name]
    seconds = args.seconds or seconds
    down_at = args.down_at if args.down_at is not None else down_at
    down_for = args.down_for or down_for
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    run_tag = f"{time.strftime('%H%M%S')}{secrets.token_hex(2)}"
    scratch = Path(tempfile.mkdtemp(prefix=f"bench-faults-{name}-"))
    group = ProcessGroup(scratch)
    from bench.__main__ import ensure_database

    ensure_database(database_url)
    direct_env = bench_env(database_url, redis_url, run_tag)
    manage(direct_env, "migrate", "--noinput")
    purge_broker(redis_url)
    db, rd = urlsplit(database_url), urlsplit(redis_url)
    proxies = {
        "postgres": FaultProxy(db.hostname or "127.0.0.1", db.port or 5432).start(),
        "redis": FaultProxy(rd.hostname or "127.0.0.1", rd.port or 6379).start(),
    }
    env = bench_env(proxies["postgres"].url(database_url), proxies["redis"].url(redis_url), run_tag)
    # Notifications fan out and digest within the run (defaults: 10 s and 5 minutes).
    env.update(NOTIFICATION_BATCH_SECONDS="2", NOTIFICATION_EMAIL_DELAY_SECONDS="5", LOG_LEVEL="WARNING")
    log(
        f"faults {name}: database {redact(database_url)}, redis {redact(redis_url)}, "
        f"run {run_tag}, logs {scratch}"
    )
    ctx = Context(
        quick=False, database_url=database_url, redis_url=redis_url, run_tag=run_tag,
        scratch=scratch, group=group, env=env,
    )  # fmt: skip
    report: dict = {"scenario": name, "service": service, "machine": machine_info()}
    clients: list[Tab] = []
    run = deployment = None
    try:
        servers = asyncio.create_task(start_servers(ctx, 2))
        worker = group.start(
            "worker", [CELERY, "-A", "marketplace", "worker", "--loglevel=warning", "--concurrency=2"], env
        )
        relay = group.start("relay", [PYTHON, "manage.py", "relay_outbox"], env)
        await asyncio.to_thread(setup_django, direct_env)
        created = await asyncio.to_thread(create_pairs, args.pairs, run_tag, prefix="f")
        servers = await servers
        run = Run([url for url, _process in servers.values()])
        deployment = Deployment(servers)
        processes = {n: p for n, (_u, p) in servers.items()} | {"worker": worker, "relay": relay}
        pairs = []
        for index, (buyer_user, seller_user, conv) in enumerate(created):
            # Buyers on one process, sellers on the other: every message crosses through Redis.
            buyer = Tab(buyer_user, index % 2)
            seller = Tab(seller_user, (index + 1) % 2)
            offline = index < args.offline
            pairs.append({"index": index, "conv": conv, "buyer": buyer, "seller": seller, "offline": offline})
            clients += [buyer] if offline else [buyer, seller]
        for client in clients:
            client.start(deployment)
        await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), 60)
        await asyncio.sleep(3)  # the opening messages' tasks and notifications settle
        after_id = await asyncio.to_thread(last_message_id)
        log(f"faults {name}: {len(clients)} sockets; {args.rate:g} msg/s for {seconds:g} s, "
            f"{service} down from {down_at:g} s for {down_for:g} s")  # fmt: skip

        tasks: set[asyncio.Task] = set()
        run.start_ns = now_ns()
        load = asyncio.create_task(offer_load(run, pairs, args.rate, seconds, tasks))
        await asyncio.sleep(down_at)
        run.down_ns = now_ns()
        proxies[service].down()
        log(f"faults {name}: {service} DOWN")
        health_down = await probe_health(run)
        await asyncio.sleep(max(0.0, down_for - (now_ns() - run.down_ns) / 1e9))
        proxies[service].up()
        run.up_ns = now_ns()
        log(f"faults {name}: {service} up")
        await load
        while tasks:
            await asyncio.gather(*list(tasks))
        log(f"faults {name}: load done; draining")

        # Converge: the worker, the relay and the sockets catch up; then a last catch-up per
        # client, as the page does on its next event or reconnect.
        drain_started = time.monotonic()
        state = None
        while time.monotonic() - drain_started < args.drain:
            state = await asyncio.to_thread(database_state, [p["conv"] for p in pairs], after_id)
            if state["outbox_entries_left"] == 0 and state["notifications_not_fanned_out"] == 0:
                break
            await asyncio.sleep(1)
        await asyncio.sleep(args.digest_wait)
        await asyncio.gather(*(c.catch_up() for c in clients))
        state = await asyncio.to_thread(database_state, [p["conv"] for p in pairs], after_id)
        report["drain_seconds"] = round(time.monotonic() - drain_started, 1)
        report["health_while_down"] = health_down
        report["health_after"] = await probe_health(run)
        report["processes_alive_without_restart"] = {n: p.poll() is None for n, p in processes.items()}
        report.update(measure(run, pairs, clients, state, seconds, down_at, down_for))
    finally:
        for client in clients:
            await client.stop()
        if run is not None:
            await run.close()
        if deployment is not None:
            deployment.close()
        group.stop_all()
        for proxy in proxies.values():
            proxy.stop()
    report["logs"] = str(scratch)
    if not args.keep_logs and verdict(report)["all_met"]:
        shutil.rmtree(scratch, ignore_errors=True)
        report["logs"] = None
    report["verdict"] = verdict(report)
    return report


async def probe_health(run: Run) -> dict:
    try:
        response = await run.http[0].get("/healthz", timeout=10)
        body = response.json()
        return {
            "status": response.status_code,
            "failing": [k for k, v in body["checks"].items() if not v["ok"]],
        }
    except Exception as exc:
        return {"error": type(exc).__name__}


def measure(run: Run, pairs: list[dict], clients: list, state: dict, seconds, down_at, down_for) -> dict:
    down_ns, up_ns = run.down_ns, run.up_ns
    first_answers = collections.Counter()
    statuses = collections.Counter()
    before, during, after = [], [], []
    refused_then_stored = 0
    for send in run.sends:
        outcome, took, sent_ns = send["attempts"][0]
        first_answers[str(outcome)] += 1
        for attempt in send["attempts"]:
            statuses[str(attempt[0])] += 1
        (before if sent_ns < down_ns else during if sent_ns < up_ns else after).append(int(took * 1e9))
        if outcome not in (200, 201) and send["final"] in (200, 201):
            refused_then_stored += 1
    stored = collections.Counter((m["sender_id"], str(m["client_id"])) for m in state["messages"])
    by_client_id = {str(m["client_id"]): m for m in state["messages"]}
    intended = len(run.sends)
    stored_of_ours = sum(1 for s in run.sends if s["client_id"] in by_client_id)
    five_xx = {k: v for k, v in statuses.items() if k.isdigit() and int(k) >= 500}
    unavailable_bodies = [s["error_body"] for s in run.sends if "error_body" in s]

    # Live delivery again: message.created frames on sockets after the service came back.
    after_up = sorted(t for c in clients for t in c.live_frames_ns if t >= up_ns)
    per_client_first = [min((t for t in c.live_frames_ns if t >= up_ns), default=None) for c in clients]
    waited = [(t - up_ns) / 1e9 for t in per_client_first if t is not None]

    # Transcripts: what each client applied against what the database holds for it.
    lost = duplicated = extra = 0
    convs = {p["conv"]: p for p in pairs}
    visible_by_conv = collections.defaultdict(set)
    for m in state["messages"]:
        visible_by_conv[m["conversation_id"]].add((m["pk"], m["sender_id"], m["status"]))
    client_conv = {}
    for p in pairs:
        client_conv[id(p["buyer"])] = p["conv"]
        client_conv[id(p["seller"])] = p["conv"]
    for client in clients:
        conv = client_conv[id(client)]
        expected = {
            pk
            for pk, sender, status in visible_by_conv[conv]
            if status == "visible" or sender == client.user_id
        }
        got = set(client.applied)
        lost += len(expected - got)
        extra += len(got - expected)
        duplicated += sum(n - 1 for n in client.applied.values() if n > 1)
    del convs
    return {
        "figures": {
            "run_seconds": seconds,
            "down_from_s": run.seconds(down_ns),
            "up_at_s": run.seconds(up_ns),
            "pairs": len(pairs),
            "sockets": len(clients),
            "messages_intended": intended,
            "messages_stored": len(state["messages"]),
            "stored_of_intended": stored_of_ours,
            "stored_twice": sum(1 for n in stored.values() if n > 1),
            "held_by_moderation": sum(1 for m in state["messages"] if m["status"] != "visible"),
            "gave_up": sum(1 for s in run.sends if s["final"] == "gave up"),
            "first_answers": dict(first_answers),
            "answers_5xx": five_xx,
            "refused_then_stored_by_retry": refused_then_stored,
            "unavailable_body": unavailable_bodies[0] if unavailable_bodies else None,
            # ms, first attempt of each send, by when it was sent
            "send_ms_before_outage": summarize_ns(before),
            "send_ms_during_outage": summarize_ns(during),
            "send_ms_after_outage": summarize_ns(after),
            "first_live_frame_after_up_s": round((after_up[0] - up_ns) / 1e9, 3) if after_up else None,
            "every_client_live_again_after_up_s": {
                "clients_with_a_frame": len(waited),
                "p50": round(sorted(waited)[len(waited) // 2], 3) if waited else None,
                "max": round(max(waited), 3) if waited else None,
            },
            "reconnects": sum(max(0, c.connects - 1) for c in clients),
            "client_errors": dict(sum((c.errors for c in clients), collections.Counter())),
            "transcripts": {"lost": lost, "duplicated": duplicated, "not_in_database": extra},
            "notifications": {k: v for k, v in state.items() if k != "messages"},
        }
    }


def verdict(report: dict) -> dict:
    f = report.get("figures")
    if not f:
        return {"all_met": False, "checks": {"ran": False}}
    during = f["send_ms_during_outage"]
    checks = {
        "every intended message stored once": f["stored_of_intended"] == f["messages_intended"]
        and f["stored_twice"] == 0
        and f["messages_stored"] == f["messages_intended"],
        "transcripts equal the database": f["transcripts"]
        == {"lost": 0, "duplicated": 0, "not_in_database": 0},
        "outbox empty": f["notifications"]["outbox_entries_left"] == 0,
        "notifications fanned out, each channel at most once": f["notifications"][
            "notifications_not_fanned_out"
        ]
        == 0
        and f["notifications"]["max_deliveries_per_notification_channel"] <= 1,
        "processes recovered without restart": all(report["processes_alive_without_restart"].values())
        and report["health_after"].get("status") == 200,
    }
    if report["service"] == "redis":
        checks["no 5xx"] = not f["answers_5xx"]
        checks[f"every send answered within {SEND_ANSWER_TARGET_S:g} s during the outage"] = (
            during["max"] is not None and during["max"] <= SEND_ANSWER_TARGET_S * 1000
        )
        checks[f"live again within {LIVE_AGAIN_TARGET_S:g} s"] = (
            f["first_live_frame_after_up_s"] is not None
            and f["first_live_frame_after_up_s"] <= LIVE_AGAIN_TARGET_S
        )
        checks["no message held for want of Redis"] = f["held_by_moderation"] == 0
    else:
        checks["refusals are 503 service_unavailable"] = (
            set(f["answers_5xx"]) <= {"503"}
            and (f["unavailable_body"] or {}).get("error") == "service_unavailable"
        )
        checks["no refusal left unstored after retries"] = f["gave_up"] == 0
    return {"all_met": all(checks.values()), "checks": checks}


def summary(report: dict) -> str:
    f = report.get("figures", {})
    lines = [f"{report['scenario']}: {'ALL MET' if report['verdict']['all_met'] else 'NOT ALL MET'}"]
    for check, met in report["verdict"]["checks"].items():
        lines.append(f"  [{'ok' if met else 'NO'}] {check}")
    if f:
        lines += [
            f"  messages: intended {f['messages_intended']}, stored {f['messages_stored']}, "
            f"twice {f['stored_twice']}, held {f['held_by_moderation']}, "
            f"refused then stored by a retry {f['refused_then_stored_by_retry']}",
            f"  first answers: {f['first_answers']}; 5xx (all attempts): {f['answers_5xx']}",
            *(
                f"  send {phase} the outage (ms): p50 {d['p50']}, p99 {d['p99']}, max {d['max']} (n={d['n']})"
                for phase in ("before", "during", "after")
                for d in [f[f"send_ms_{phase}_outage"]]
            ),
            f"  first live frame after the service came back: {f['first_live_frame_after_up_s']} s; "
            f"every client: {f['every_client_live_again_after_up_s']}",
            f"  transcripts vs database: {f['transcripts']}; reconnects {f['reconnects']}",
            f"  notifications: {f['notifications']}",
            f"  health while down: {report['health_while_down']}; after: {report['health_after']}",
        ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--offline", type=int, default=4, help="pairs whose seller has no socket")
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--down-at", type=float, default=None)
    parser.add_argument("--down-for", type=float, default=None)
    parser.add_argument("--drain", type=float, default=60.0, help="max seconds to wait for convergence")
    parser.add_argument("--digest-wait", type=float, default=8.0, help="seconds for the email digests")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    report = asyncio.run(scenario(args.scenario, args))
    print(json.dumps(report, indent=2, default=str))
    print(summary(report), file=sys.stderr)
    return 0 if report["verdict"]["all_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
