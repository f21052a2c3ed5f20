"""Celery notifications: notify() → the recipient's socket, and the fan-out task's rate on one
Celery worker process.

What the product does (notifications/services.py): `notify()` stores the notification and
appends a `notification.created` event inside the caller's transaction; after commit the
event is pushed to the recipient's sockets by the process that called notify() (through the
channel layer, not through Celery), and one `notifications.fan_out` task is queued with
`countdown=NOTIFICATION_BATCH_SECONDS` (10 s in production, to gather a burst into one email).
The task serves email and push. This benchmark sets NOTIFICATION_BATCH_SECONDS to 0 (in this
process, where the task is queued, and in the worker) so that each task runs when it arrives.

1. Live: one daphne process, `--quick` 20 (else 100) recipients with their websocket open on
   /ws/events/, and one notify() at a time, each in its own transaction, round robin. Latency
   is from the commit (an on-commit callback registered before notify()'s own) to the frame on
   the socket; enqueue → task done from the same commit to `fanned_out_at`. Frames are counted
   by notification id: lost and duplicated.
2. Throughput: notifications through notify() with the after-commit enqueue held back (one
   recipient each, so every task has a notification of its own to fan out), then, with the
   worker's queue paused (cancel_consumer), one `fan_out_task.apply_async` per notification,
   timed (the enqueue). Then the queue is resumed (add_consumer): tasks per second = tasks the
   worker completed (its own `inspect stats` count) over the time it took to drain them.
   The same with Celery's built-in no-op task (`celery.accumulate`): what the worker and the
   broker cost a task with nothing in it, the ceiling for this worker.
3. SQL statements one fan-out task runs, in this process, under CaptureQueriesContext.

The worker: `celery -A marketplace worker --pool solo` on a queue of the run's own, one
process (no pool children). Email goes to Django's in-memory backend (rendered, never sent);
Web Push has no VAPID key (claimed and marked skipped).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import json
import socket
import time

from bench.stack import (
    CELERY,
    Context,
    CpuMeter,
    Result,
    Row,
    log,
    make_bench_users,
    ratio,
    setup_django,
    start_servers,
    summarize_ns,
)

NAME = "notify"
TITLE = "Celery notification: enqueue → the recipient's socket, tasks/s on one worker"
TARGET_TASKS_PER_S = 500


def sizes(ctx: Context) -> dict:
    if ctx.quick:
        return {"socket_users": 20, "live": 100, "backlog": 300, "noop": 500}
    return {"socket_users": 100, "live": 1000, "backlog": 3000, "noop": 5000}


# ---- Django side (runs on one thread: `DjangoThread`) -----------------------------------------


class DjangoThread:
    """Every ORM call of the benchmark on one thread, so one connection serves them all and is
    closed at the end. It is not a SyncToAsync thread: notify()'s push runs as in a worker or a
    management command (async_to_sync on a loop of its own)."""

    def __init__(self):
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="django")

    async def __call__(self, function, *args, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(
            self.executor, lambda: function(*args, **kwargs)
        )

    async def close(self):
        from django.db import connections

        await self(connections.close_all)
        self.executor.shutdown(wait=True)


def create_backlog_users(count: int, run_tag: str) -> list:
    """Recipients without sockets, one per backlog notification (bulk, no tokens)."""
    from marketplace.accounts.models import Profile, User

    users = [
        User(username=f"bench_nb{i}_{run_tag}", email=f"bench_nb{i}_{run_tag}@example.invalid")
        for i in range(count)
    ]
    for user in users:
        user.set_unusable_password()
    User.objects.bulk_create(users)
    Profile.objects.bulk_create([Profile(user=u, display_name=f"Bench {i}") for i, u in enumerate(users)])
    return list(User.objects.filter(pk__in=[u.pk for u in users]).order_by("pk"))


def give_emails(user_ids: list[int]) -> None:
    """An address for each socket user, so that their fan-out renders an email too."""
    from django.db.models import Value
    from django.db.models.functions import Concat

    from marketplace.accounts.models import User

    User.objects.filter(pk__in=user_ids).update(email=Concat("username", Value("@example.invalid")))


def notify_one(recipient, run_tag: str, label: str, seq: int, stamps: dict | None = None):
    """One notification in its own transaction, as a service sends it. With `stamps`, the
    commit time (perf_counter_ns, and wall clock for fanned_out_at) is recorded under its id."""
    from django.db import transaction

    from notifications.models import Kind
    from notifications.services import notify

    commit = {}
    with transaction.atomic():
        # Registered before notify()'s own callbacks, so it runs first after the commit.
        transaction.on_commit(lambda: commit.update(ns=time.perf_counter_ns(), wall=time.time()))
        notification = notify(
            recipient=recipient,
            kind=Kind.ORDER_UPDATED,
            title=f"Order #{1000 + seq} was updated",
            body="The seller changed the delivery date to Friday. Open the order to see what changed.",
            url=f"/orders/{1000 + seq}/",
            dedupe_key=f"bench:{run_tag}:{label}:{seq}",
        )
    if stamps is not None:
        stamps[notification.pk] = commit
    return notification.pk


def notify_backlog(users: list, run_tag: str) -> list[int]:
    """One notification per user, their after-commit enqueue held back (queued by the caller)."""
    from unittest import mock

    from notifications import services

    with mock.patch.object(services, "_queue_fan_out", lambda ids: None):
        return [notify_one(user, run_tag, "backlog", i) for i, user in enumerate(users)]


def enqueue_all(ids: list[int]) -> list[int]:
    """What _queue_fan_out does for each notification, timed one by one (ns)."""
    from django.conf import settings

    from notifications.tasks import fan_out_task

    timings = []
    for pk in ids:
        started = time.perf_counter_ns()
        fan_out_task.apply_async([[pk]], countdown=settings.NOTIFICATION_BATCH_SECONDS)
        timings.append(time.perf_counter_ns() - started)
    return timings


def fanned_out(ids: list[int]) -> dict[int, float]:
    """{notification id: fanned_out_at as a unix time} for those done."""
    from notifications.models import Notification

    return {
        pk: at.timestamp()
        for pk, at in Notification.objects.filter(pk__in=ids, fanned_out_at__isnull=False).values_list(
            "pk", "fanned_out_at"
        )
    }


def deliveries(ids: list[int]) -> dict[str, int]:
    from django.db.models import Count

    from notifications.models import Delivery

    return {
        f"{row['channel']}:{row['status']}": row["n"]
        for row in Delivery.objects.filter(notification_id__in=ids)
        .values("channel", "status")
        .annotate(n=Count("pk"))
        .order_by("channel", "status")
    }


def fan_out_statements(recipients: list, run_tag: str) -> dict:
    """The SQL one fan-out task runs for one notification (after one warm-up fan-out to another
    recipient: a fan-out serves every notification still waiting for its recipients)."""
    from unittest import mock

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications import services

    with mock.patch.object(services, "_queue_fan_out", lambda ids: None):
        warm = notify_one(recipients[0], run_tag, "sql-warm", 0)
        measured = notify_one(recipients[1], run_tag, "sql", 0)
    services.fan_out(notification_ids=[warm])
    with CaptureQueriesContext(connection) as captured:
        services.fan_out(notification_ids=[measured])
    kinds = collections.Counter(
        q["sql"].lstrip().split(None, 1)[0].upper() for q in captured.captured_queries
    )
    return {"statements": len(captured), "by_kind": dict(kinds.most_common())}


def cleanup(user_ids: list[int]) -> dict:
    from inbox.models import Event
    from marketplace.accounts.models import User
    from notifications.models import Notification

    return {
        "notifications": Notification.objects.filter(recipient_id__in=user_ids).delete()[0],
        "events": Event.objects.filter(user_id__in=user_ids).delete()[0],
        "users_and_rest": User.objects.filter(pk__in=user_ids).delete()[0],
    }


# ---- The recipients' sockets ------------------------------------------------------------------


class Sockets:
    """Every recipient's socket: when each notification.created frame arrived, by id."""

    def __init__(self):
        self.arrivals: dict[int, list[int]] = collections.defaultdict(list)
        self.waiters: dict[int, asyncio.Future] = {}
        self.other_frames = collections.Counter()
        self.closed: list[str] = []

    def wait_for(self, notification_id: int) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        if self.arrivals.get(notification_id):
            future.set_result(self.arrivals[notification_id][0])
        else:
            self.waiters[notification_id] = future
        return future

    async def read(self, ws) -> None:
        import websockets

        try:
            async for raw in ws:
                received = time.perf_counter_ns()
                frame = json.loads(raw)
                if frame.get("type") != "notification.created":
                    self.other_frames[frame.get("type", "?")] += 1
                    continue
                pk = frame["notification"]["id"]
                self.arrivals[pk].append(received)
                waiter = self.waiters.pop(pk, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(received)
        except websockets.ConnectionClosed as closed:
            self.closed.append(f"{type(closed).__name__}: {closed}")


async def open_socket(base_url: str, token: str):
    import websockets

    ws = await websockets.connect(
        base_url.replace("http", "ws", 1) + "/ws/events/",
        additional_headers={"Authorization": f"Bearer {token}"},
        compression=None,
        max_queue=None,
    )
    hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
    if hello.get("type") != "hello":
        raise RuntimeError(f"expected a hello frame, got {hello}")
    return ws


# ---- The worker ------------------------------------------------------------------------------


def route_to(app, routes) -> None:
    """Set the task routes; Celery caches its router at the first publish (an earlier benchmark
    in this process may have published), so it is rebuilt too."""
    app.conf.task_routes = routes
    app.amqp.flush_routes()
    app.amqp.router = app.amqp.Router()


async def start_worker(ctx: Context, app, queue: str, name: str):
    argv = [
        CELERY, "-A", "marketplace", "worker", "-Q", queue, "-n", name, "--pool", "solo",
        "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    process = ctx.group.start("celery-worker", argv, ctx.child_env(NOTIFICATION_BATCH_SECONDS="0"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited:\n{ctx.group.log_tail('celery-worker')}")
        if await asyncio.to_thread(app.control.ping, destination=[name], timeout=0.5):
            return process
    raise RuntimeError(f"the worker did not answer a ping in 60 s:\n{ctx.group.log_tail('celery-worker')}")


class WorkerControl:
    """Pause the worker's queue while a backlog is enqueued, then time how fast it drains it
    (tasks completed, by the worker's own count), so the enqueue rate does not limit it."""

    def __init__(self, app, name: str, queue: str):
        self.app, self.name, self.queue = app, name, queue

    async def completed(self, task_name: str) -> int:
        stats = await asyncio.to_thread(
            lambda: self.app.control.inspect([self.name], timeout=2, limit=1).stats()
        )
        if not stats or self.name not in stats:
            raise RuntimeError("the worker did not answer `inspect stats`")
        return stats[self.name].get("total", {}).get(task_name, 0)

    async def pause(self) -> None:
        await asyncio.to_thread(
            self.app.control.cancel_consumer, self.queue, destination=[self.name], reply=True
        )

    async def drain(self, task_name: str, count: int, timeout: float = 300) -> dict:
        before = await self.completed(task_name)
        started = time.monotonic()
        await asyncio.to_thread(
            self.app.control.add_consumer, self.queue, destination=[self.name], reply=True
        )
        done = 0
        while done < count and time.monotonic() - started < timeout:
            await asyncio.sleep(0.05)
            done = await self.completed(task_name) - before
        seconds = time.monotonic() - started
        return {
            "tasks_completed": done,
            "drain_seconds": round(seconds, 3),
            "tasks_per_s": round(done / seconds, 1),
        }


async def wait_fanned_out(django: DjangoThread, ids: list[int], timeout: float) -> dict[int, float]:
    deadline = time.monotonic() + timeout
    while True:
        done = await django(fanned_out, ids)
        if len(done) == len(ids) or time.monotonic() > deadline:
            return done
        await asyncio.sleep(0.1)


# ---- The benchmark ----------------------------------------------------------------------------


async def run(ctx: Context) -> Result:
    size = sizes(ctx)
    setup_django(ctx.env)
    from django.conf import settings

    from marketplace.celery import app

    queue = f"bench-notify-{ctx.run_tag}"
    worker_name = f"bench-notify-{ctx.run_tag}@{socket.gethostname()}"
    saved_routes, saved_batch = app.conf.task_routes, settings.NOTIFICATION_BATCH_SECONDS
    route_to(app, {"notifications.*": {"queue": queue}})
    settings.NOTIFICATION_BATCH_SECONDS = 0  # each task runs when it arrives (see the docstring)

    django = DjangoThread()
    user_ids: list[int] = []
    sockets = Sockets()
    readers: list[asyncio.Task] = []
    open_sockets = []
    details: dict = {
        "worker": "celery -A marketplace worker --pool solo (one process)",
        "notification_batch_seconds": "0 for the benchmark (production default 10)",
        "socket_push": "notify() pushes notification.created after commit from its own process; "
        "the Celery fan_out task serves email and push",
        "sizes": size,
    }
    try:
        log("notify: servers, worker and users")
        servers_task = asyncio.create_task(start_servers(ctx, 1))
        worker_task = asyncio.create_task(start_worker(ctx, app, queue, worker_name))
        socket_users = await django(make_bench_users, size["socket_users"], ctx.run_tag, prefix="nt")
        user_ids += [user.pk for user, _ in socket_users]
        await django(give_emails, user_ids)
        backlog_users = await django(create_backlog_users, size["backlog"], ctx.run_tag)
        user_ids += [user.pk for user in backlog_users]
        servers = await servers_task
        worker = await worker_task
        ((base_url, daphne),) = servers.values()
        meter = CpuMeter({"daphne-1": daphne.pid, "celery-worker": worker.pid})

        open_sockets = await asyncio.gather(*(open_socket(base_url, token) for _user, token in socket_users))
        readers = [asyncio.create_task(sockets.read(ws)) for ws in open_sockets]

        # 1. Live: one notify() at a time, commit → frame, commit → fanned out.
        log(f"notify: live, {size['live']} notifications one at a time")
        stamps: dict[int, dict] = {}
        live_ids, frame_ns = [], []
        before = meter.snapshot()
        for seq in range(size["live"]):
            recipient = socket_users[seq % len(socket_users)][0]
            pk = await django(notify_one, recipient, ctx.run_tag, "live", seq, stamps)
            live_ids.append(pk)
            waiter = sockets.wait_for(pk)
            with contextlib.suppress(TimeoutError):
                arrived = await asyncio.wait_for(waiter, 5)
                frame_ns.append(arrived - stamps[pk]["ns"])
        live_cpu = CpuMeter.between(before, meter.snapshot())
        done = await wait_fanned_out(django, live_ids, 30)
        task_ms = [int((done[pk] - stamps[pk]["wall"]) * 1e9) for pk in live_ids if pk in done]
        await asyncio.sleep(0.5)  # late or duplicate frames
        live_frames = {pk: len(sockets.arrivals.get(pk, [])) for pk in live_ids}
        live = {
            "notifications": len(live_ids),
            "commit_to_frame_ms": summarize_ns(frame_ns),
            "commit_to_fanned_out_ms": summarize_ns(task_ms),
            "frames_lost": sum(1 for n in live_frames.values() if n == 0),
            "frames_duplicated": sum(n - 1 for n in live_frames.values() if n > 1),
            "not_fanned_out": len(live_ids) - len(done),
            "cpu": live_cpu,
        }
        details["live"] = live

        # 2. Throughput: a backlog of tasks, one notification each, drained by the worker.
        log(f"notify: throughput, {size['backlog']} fan-out tasks")
        backlog_ids = await django(notify_backlog, backlog_users, ctx.run_tag)
        worker_control = WorkerControl(app, worker_name, queue)
        await worker_control.pause()
        first_enqueue = time.time()
        enqueue_ns = await django(enqueue_all, backlog_ids)
        enqueued = time.time()
        log("notify: the worker drains")
        before = meter.snapshot()
        drain = await worker_control.drain("notifications.fan_out", len(backlog_ids))
        drain_cpu = CpuMeter.between(before, meter.snapshot())
        done = await django(fanned_out, backlog_ids)
        worker_cpu = drain_cpu.get("celery-worker", {}).get("cpu_seconds")
        tasks = drain["tasks_completed"]
        throughput = {
            "tasks_enqueued": len(backlog_ids),
            **drain,
            "notifications_fanned_out": len(done),
            "enqueue_ms": summarize_ns(enqueue_ns),
            "enqueue_per_s": round(len(backlog_ids) / (enqueued - first_enqueue), 1),
            "worker_cpu_ms_per_task": round(1000 * worker_cpu / tasks, 2) if worker_cpu and tasks else None,
            "deliveries": await django(deliveries, backlog_ids),
            "cpu": drain_cpu,
        }
        # The same worker running Celery's own no-op task: what a task costs with nothing in it.
        log(f"notify: the worker drains {size['noop']} no-op tasks")
        await worker_control.pause()
        await asyncio.to_thread(
            lambda: [app.send_task("celery.accumulate", args=(i,), queue=queue) for i in range(size["noop"])]
        )
        before = meter.snapshot()
        noop = await worker_control.drain("celery.accumulate", size["noop"])
        noop_cpu = CpuMeter.between(before, meter.snapshot()).get("celery-worker", {}).get("cpu_seconds")
        noop["worker_cpu_ms_per_task"] = (
            round(1000 * noop_cpu / noop["tasks_completed"], 2)
            if noop_cpu and noop["tasks_completed"]
            else None
        )
        details["celery_noop"] = noop
        details["throughput"] = throughput
        log("notify: statements per fan-out")
        details["fan_out_sql"] = await django(fan_out_statements, backlog_users[:2], ctx.run_tag)
    finally:
        for ws in open_sockets:
            with contextlib.suppress(Exception):
                await ws.close()
        for reader in readers:
            reader.cancel()
        if user_ids:
            with contextlib.suppress(Exception):
                details["removed"] = await django(cleanup, user_ids)
        await django.close()
        route_to(app, saved_routes)
        settings.NOTIFICATION_BATCH_SECONDS = saved_batch
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis.from_url(ctx.redis_url, socket_timeout=5)
            client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
            client.close()
    details["other_frames"] = dict(sockets.other_frames)
    details["sockets_closed"] = sockets.closed

    queue_per_s = ctx.baselines.get("queue_per_s")
    ping = (ctx.baselines.get("redis_ping_ms") or {}).get("p50")
    tasks_per_s = throughput["tasks_per_s"]
    enqueue_p50 = throughput["enqueue_ms"]["p50"]
    frame = live["commit_to_frame_ms"]
    figures = {
        "tasks_per_s": tasks_per_s,
        "ratio_to_b_q": ratio(tasks_per_s, queue_per_s),
        "b_q_per_s": queue_per_s,
        "enqueue_p50_ms": enqueue_p50,
        "enqueue_ratio_to_b_redis": ratio(enqueue_p50, ping),
        "commit_to_frame_ms": frame,
        "commit_to_fanned_out_ms": live["commit_to_fanned_out_ms"],
        "frames_lost": live["frames_lost"],
        "frames_duplicated": live["frames_duplicated"],
        "worker_cpu_ms_per_task": throughput["worker_cpu_ms_per_task"],
        "celery_noop_tasks_per_s": details["celery_noop"]["tasks_per_s"],
        "ratio_to_celery_noop": ratio(tasks_per_s, details["celery_noop"]["tasks_per_s"]),
        "fan_out_statements": details["fan_out_sql"]["statements"],
    }
    measured = (
        f"{tasks_per_s} tasks/s on one worker (= {figures['ratio_to_b_q']}x B-q, "
        f"{figures['ratio_to_celery_noop']}x Celery's no-op task at {figures['celery_noop_tasks_per_s']}/s; "
        f"{throughput['worker_cpu_ms_per_task']} ms worker CPU, {figures['fan_out_statements']} SQL "
        f"statements a task); enqueue p50 {enqueue_p50} ms "
        f"(= {figures['enqueue_ratio_to_b_redis']}x B-redis); commit → frame p50 {frame['p50']} ms, "
        f"p99 {frame['p99']} ms; enqueue → fanned out p50 {live['commit_to_fanned_out_ms']['p50']} ms; "
        f"frames lost {live['frames_lost']}, duplicated {live['frames_duplicated']}"
    )
    met = (
        tasks_per_s is not None
        and tasks_per_s >= TARGET_TASKS_PER_S
        and live["frames_lost"] == 0
        and live["frames_duplicated"] == 0
    )
    row = Row(
        "Celery notification: enqueue → the recipient's socket",
        f"≥ {TARGET_TASKS_PER_S} tasks/s on one worker (performance.md: ≥ 0.2x B-q, enqueue p50 ≤ 3x "
        "B-redis, p50 ≤ 15 ms, p99 ≤ 60 ms); 0 frames lost or duplicated",
        measured,
        met,
        figures,
    )
    return Result(rows=[row], details=details)
