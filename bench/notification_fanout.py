"""Notification fan-out benchmark: notify() in batches -> a real Celery worker emails every one.

Not a test: it measures. Against DATABASE_URL (PostgreSQL) and REDIS_URL (the Celery broker
here), it starts one Celery worker subprocess (`.venv/bin/celery -A marketplace worker`) on a
queue of its own, creates --users users, then creates --notifications notifications through
`notifications.services.notify`, --batch of them per transaction (as services call it: each
notification queues its own fan-out task after commit). It waits until every one of them has
`fanned_out_at` set and reports:

- notifications per second end to end: from the first notify() to the last fan-out done;
- how fast notify() itself went (per batch commit), and how long the worker needed after the
  last commit (the drain);
- the deliveries the worker recorded (email sent, push skipped: no VAPID key is configured);
- the SQL statements one fan-out runs, measured in this process with CaptureQueriesContext
  for one notification (what each after-commit task does), for --batch notifications to
  distinct recipients, and for --batch notifications to one recipient (what a sweep batch
  does), counted by kind of statement;
- the worker's CPU seconds (main process and pool children).

Email goes to Django's in-memory backend (EMAIL_URL=memorymail://, in the worker and here):
the messages are rendered and built as MIME, but nothing leaves the machine. Web Push is off
(WEBPUSH_VAPID_PRIVATE_KEY empty), so each push delivery is claimed and marked skipped.

It prints one JSON object, then a short summary. Usage (from the project root):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_inbox REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/notification_fanout.py [--notifications 10000] [--users 200]
        [--batch 100] [--concurrency N] [--json-out results.json]

Everything it creates (users and, through them, their notifications, deliveries and events;
the worker's queue in Redis) is deleted at the end, and the worker is stopped on any exit,
Ctrl-C included.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import importlib.metadata
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as `python bench/notification_fanout.py`: the project root on the path, for `bench.stack`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stack
from bench.stack import (
    CELERY,
    DEFAULT_REDIS_URL,
    ROOT,
    bench_env,
    log,
    machine_info,
    manage,
    redact,
    summarize_ns,
    tree_cpu_seconds,
)


def package_versions() -> dict:
    versions = stack.package_versions()
    for name in ("kombu", "pywebpush"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def setup_django(env: dict, queue: str):
    stack.setup_django(env)
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError("DATABASE_URL must point at PostgreSQL (postgres://...)")
    if settings.CELERY_TASK_ALWAYS_EAGER:
        raise RuntimeError("Celery is eager here: CELERY_BROKER_URL did not reach the settings")
    from marketplace.celery import app

    # Our own queue: no other worker on this Redis takes these tasks, and ours takes no others.
    app.conf.task_routes = {"notifications.*": {"queue": queue}}
    return app


class Worker:
    """The Celery worker subprocess, stopped on any exit (warm shutdown, then kill)."""

    def __init__(self, env: dict, queue: str, name: str, concurrency: int, log_path: Path):
        self.name, self.log_path = name, log_path
        with open(log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                [
                    CELERY,
                    "-A",
                    "marketplace",
                    "worker",
                    "-Q",
                    queue,
                    "-n",
                    name,
                    "--concurrency",
                    str(concurrency),
                    "--pool",
                    "prefork",
                    "--loglevel",
                    "INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=ROOT,
                env=env,
                stdout=log_file,
                stderr=log_file,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self, app, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited with {self.process.returncode}:\n{self.log_tail()}")
            if app.control.ping(destination=[self.name], timeout=0.5):
                return
        raise RuntimeError(f"the worker did not answer a ping in {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()  # warm shutdown: the pool finishes its current tasks
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def create_users(count: int, run_tag: str) -> list:
    from marketplace.accounts.models import Profile, User

    users = [
        User(username=f"bench_nf_{run_tag}_{i}", email=f"bench_nf_{run_tag}_{i}@example.invalid")
        for i in range(count)
    ]
    for user in users:
        user.set_unusable_password()  # nobody logs in as these
    User.objects.bulk_create(users)
    Profile.objects.bulk_create(
        [Profile(user=u, display_name=f"Bench user {i}") for i, u in enumerate(users)]
    )
    return list(User.objects.filter(pk__in=[u.pk for u in users]).select_related("profile").order_by("pk"))


def notify_batch(users: list, start: int, size: int, run_tag: str, label: str) -> list[int]:
    """`size` notifications in one transaction, round robin over `users`."""
    from django.db import transaction

    from notifications.models import Kind
    from notifications.services import notify

    ids = []
    with transaction.atomic():
        for i in range(start, start + size):
            recipient = users[i % len(users)]
            notification = notify(
                recipient=recipient,
                kind=Kind.ORDER_UPDATED,
                title=f"Order #{1000 + i} was updated",
                body="The seller changed the delivery date to Friday. Open the order to see what changed.",
                url=f"/orders/{1000 + i}/",
                dedupe_key=f"bench:{run_tag}:{label}:{i}",
            )
            ids.append(notification.pk)
    return ids


# ---- Measurements -----------------------------------------------------------------------------


def run_end_to_end(users: list, args, run_tag: str) -> dict:
    from django.db.models import Count

    from notifications.models import Delivery, Notification

    user_ids = [u.pk for u in users]
    pending = Notification.objects.filter(recipient_id__in=user_ids, fanned_out_at__isnull=True)
    batch_ns, created = [], 0
    started = time.monotonic()
    samples = []  # (seconds since start, fanned out so far)
    while created < args.notifications:
        size = min(args.batch, args.notifications - created)
        t0 = time.perf_counter_ns()
        notify_batch(users, created, size, run_tag, "e2e")
        batch_ns.append(time.perf_counter_ns() - t0)
        created += size
    created_at = time.monotonic()
    log(f"created {created} notifications in {created_at - started:.1f} s; waiting for the worker")
    deadline = created_at + args.timeout
    while True:
        left = pending.count()
        now = time.monotonic()
        samples.append((round(now - started, 3), created - left))
        if left == 0:
            break
        if now > deadline:
            raise RuntimeError(
                f"{left} of {created} notifications still not fanned out after {args.timeout} s"
            )
        time.sleep(args.poll)
    done_at = time.monotonic()
    total = done_at - started
    done_when_created = next((n for t, n in samples if t >= created_at - started), 0)
    deliveries = {
        f"{row['channel']}:{row['status']}": row["n"]
        for row in Delivery.objects.filter(notification__recipient_id__in=user_ids)
        .values("channel", "status")
        .annotate(n=Count("pk"))
        .order_by("channel", "status")
    }
    return {
        "notifications": created,
        "notify_batches": len(batch_ns),
        "notify_batch_ms": summarize_ns(batch_ns),
        "notify_seconds": round(created_at - started, 3),
        "notify_per_second": round(created / (created_at - started), 1),
        "end_to_end_seconds": round(total, 3),
        "notifications_per_second_end_to_end": round(created / total, 1),
        "drain_seconds_after_last_commit": round(done_at - created_at, 3),
        "fanned_out_when_the_last_committed": done_when_created,
        # The worker alone, once nothing new arrives: what it fans out per second.
        "fan_out_per_second_while_draining": round((created - done_when_created) / (done_at - created_at), 1)
        if done_at > created_at and created > done_when_created
        else None,
        "deliveries": deliveries,
        # (seconds since the first notify(), notifications fanned out so far), at most 100 points
        "progress": samples[:: max(1, math.ceil(len(samples) / 100))] + samples[-1:],
    }


def statement_kind(sql: str) -> str:
    """SELECT, INSERT, UPDATE, SAVEPOINT, RELEASE, ...: the statement's first word."""
    return sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"


def measure_fan_out_queries(users: list, args, run_tag: str) -> dict:
    """services.fan_out in this process under CaptureQueriesContext, for three batch shapes.
    The notifications are created with their after-commit task switched off (so the worker
    never sees them), then fanned out here."""
    from unittest import mock

    from django.core import mail
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications import services

    shapes = {
        "one_notification": (users[:1], 1),
        "batch_distinct_recipients": (users[: min(args.batch, len(users))], args.batch),
        "batch_one_recipient": (users[1:2] or users[:1], args.batch),
    }
    # Warm-up, not counted: the first fan-out in a process loads and compiles the email templates.
    with mock.patch.object(services, "_queue_fan_out", lambda ids: None):
        warm = notify_batch(users[:1], 0, 1, run_tag, "q-warmup")
    services.fan_out(notification_ids=warm)
    results = {}
    for name, (recipients, size) in shapes.items():
        with (
            mock.patch.object(services, "_queue_fan_out", lambda ids: None),
            CaptureQueriesContext(connection) as notify_queries,
        ):
            ids = notify_batch(recipients, 0, size, run_tag, f"q-{name}")
        outbox_before = len(getattr(mail, "outbox", []))
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            services.fan_out(notification_ids=ids)
            elapsed_ms = (time.perf_counter() - t0) * 1000
        kinds = collections.Counter(statement_kind(q["sql"]) for q in captured.captured_queries)
        results[name] = {
            "notifications": len(ids),
            "recipients": len(recipients),
            "queries": len(captured),
            "queries_per_notification": round(len(captured) / len(ids), 2),
            "by_statement": dict(kinds.most_common()),
            "emails": len(getattr(mail, "outbox", [])) - outbox_before,
            "wall_ms": round(elapsed_ms, 2),
            "notify_queries_per_notification": round(len(notify_queries) / len(ids), 2),
        }
    return results


def cleanup(users: list, queue: str, redis_url: str) -> dict:
    import redis

    from inbox.models import Event
    from marketplace.accounts.models import User
    from notifications.models import Notification

    user_ids = [u.pk for u in users]
    removed = {
        "notifications": Notification.objects.filter(recipient_id__in=user_ids).delete()[0],
        "events": Event.objects.filter(user_id__in=user_ids).delete()[0],
        "users_and_rest": User.objects.filter(pk__in=user_ids).delete()[0],
    }
    with contextlib.suppress(redis.RedisError):
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        removed["redis_keys"] = client.delete(
            queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"
        )
    return removed


def human_summary(report: dict) -> str:
    e2e, q, s = report["end_to_end"], report["fan_out_queries"], report["settings"]
    lines = [
        f"notification_fanout on {s['database']} + {s['redis_url']}, worker concurrency "
        f"{s['concurrency']}, {report['machine']['cpu_count']} CPUs, Python {report['machine']['python']} "
        f"({report['date']})",
        f"  {e2e['notifications']} notifications to {s['users']} users, notify() in batches of {s['batch']}:",
        f"  end to end            {e2e['notifications_per_second_end_to_end']} notifications/s "
        f"({e2e['end_to_end_seconds']} s from the first notify() to the last fan-out)",
        f"  notify() alone        {e2e['notify_per_second']} notifications/s "
        f"(batch commit ms p50 {e2e['notify_batch_ms']['p50']}, p99 {e2e['notify_batch_ms']['p99']})",
        f"  drain after commit    {e2e['drain_seconds_after_last_commit']} s "
        f"({e2e['fanned_out_when_the_last_committed']} already done then; the worker alone: "
        f"{e2e['fan_out_per_second_while_draining']} notifications/s)",
        f"  deliveries            {e2e['deliveries']}",
        f"  worker CPU            {report['worker_cpu_seconds']} s "
        f"({report['worker_cpu_ms_per_notification']} ms per notification)",
        "  SQL per fan-out (in process):",
    ]
    for name, r in q.items():
        lines.append(
            f"    {name:<26} {r['notifications']:>4} notif. -> {r['queries']:>5} queries "
            f"({r['queries_per_notification']}/notification), {r['emails']} email(s), {r['wall_ms']} ms"
        )
    return "\n".join(lines)


def benchmark(args, scratch: Path) -> dict:
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://", "pgsql://")):
        raise RuntimeError("set DATABASE_URL to a PostgreSQL database (postgres://...)")
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    run_tag = f"{time.strftime('%Y%m%d%H%M%S')}{secrets.token_hex(3)}"
    queue = f"bench-notify-{run_tag}"
    env = bench_env(database_url, redis_url, run_tag)
    load_at_start = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    log(f"database {redact(database_url)}, broker {redact(redis_url)}, queue {queue}")
    log("migrate")
    manage(env, "migrate", "--noinput")
    app = setup_django(env, queue)
    from django.conf import settings

    concurrency = args.concurrency or os.cpu_count() or 1
    worker_name = f"bench-{run_tag}@{socket.gethostname()}"
    worker = Worker(env, queue, worker_name, concurrency, scratch / "worker.log")
    users = []
    try:
        log(f"starting the Celery worker ({concurrency} processes)")
        worker.wait_ready(app)
        users = create_users(args.users, run_tag)
        cpu_before = tree_cpu_seconds(worker.process.pid)
        log(f"{args.notifications} notifications to {len(users)} users, batches of {args.batch}")
        end_to_end = run_end_to_end(users, args, run_tag)
        cpu_after = tree_cpu_seconds(worker.process.pid)
        log("SQL per fan-out, in process")
        queries = measure_fan_out_queries(users, args, run_tag)
    finally:
        worker.stop()
        if users and not args.keep_data:
            log("cleaning up")
            removed = cleanup(users, queue, redis_url)
            log(f"removed {removed}")
    worker_cpu = (
        round(cpu_after - cpu_before, 3) if cpu_before is not None and cpu_after is not None else None
    )
    return {
        "benchmark": "notification_fanout",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(
            [
                *(f"{n}={redact(os.environ[n])}" for n in ("DATABASE_URL", "REDIS_URL") if n in os.environ),
                os.path.relpath(sys.executable, ROOT),
                *sys.argv,
            ]
        ),
        "settings": {
            "notifications": args.notifications,
            "users": args.users,
            "batch": args.batch,
            "concurrency": concurrency,
            "kind": "order_updated (email and push on by default; not a digest kind)",
            "email_backend": settings.EMAIL_BACKEND,
            "push": "off (no VAPID key): each push delivery is claimed and marked skipped",
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            "database_url": redact(database_url),
            "redis_url": redact(redis_url),
            "queue": queue,
            "poll_seconds": args.poll,
        },
        "machine": {**machine_info(), "load_average_at_start": load_at_start},
        "versions": package_versions(),
        "end_to_end": end_to_end,
        "worker_cpu_seconds": worker_cpu,
        "worker_cpu_ms_per_notification": round(1000 * worker_cpu / args.notifications, 3)
        if worker_cpu is not None
        else None,
        "fan_out_queries": queries,
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notifications", type=int, default=10_000, help="how many (default 10000)")
    parser.add_argument("--users", type=int, default=200, help="recipients, round robin (default 200)")
    parser.add_argument("--batch", type=int, default=100, help="notify() calls per transaction (default 100)")
    parser.add_argument("--concurrency", type=int, default=0, help="worker processes (default: CPU count)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the worker (900)")
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between progress checks (0.25)")
    parser.add_argument("--json-out", type=Path, help="also write the JSON report to this file")
    parser.add_argument("--keep-logs", action="store_true", help="keep the worker's log")
    parser.add_argument("--keep-data", action="store_true", help="do not delete the users and notifications")
    args = parser.parse_args(argv)
    if min(args.notifications, args.users, args.batch) < 1 or args.concurrency < 0:
        parser.error("--notifications, --users and --batch must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-fanout-"))

    def on_sigterm(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGHUP, on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        report = benchmark(args, scratch)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except RuntimeError as exc:
        log(f"failed: {exc}")
        log(f"worker log kept in {scratch}")
        args.keep_logs = True
        return 1
    finally:
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
    sys.exit(main())
