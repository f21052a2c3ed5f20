"""What every benchmark shares: the processes it starts, the statistics it reports, the
machine it ran on, and the `Row` each benchmark returns to `python -m bench`.

Every benchmark module of the suite has `NAME`, a one-line `TITLE` and `run(ctx) -> Result`
(sync or async). `ctx.quick` asks for a smoke-sized run (the whole suite in about a minute).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.metadata
import math
import os
import platform
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
CELERY = str(VENV_BIN / "celery") if (VENV_BIN / "celery").exists() else "celery"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_inbox"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- What a benchmark returns -----------------------------------------------------------------


@dataclasses.dataclass
class Row:
    """One line of the issue's target table (or a baseline): what was measured against what."""

    metric: str  # as the target table names it
    target: str  # the target, in words: "p50 <= 2x (B-ws + B-layer + B-db)"
    measured: str  # the figure, in words: "p50 3.1 ms = 1.4x; p99 9.0 ms = 2.1x"
    met: bool | None  # None for a baseline (nothing to meet)
    figures: dict = dataclasses.field(default_factory=dict)  # the numbers behind `measured`


@dataclasses.dataclass
class Result:
    rows: list[Row]
    details: dict = dataclasses.field(default_factory=dict)  # everything else worth keeping


@dataclasses.dataclass
class Context:
    quick: bool
    database_url: str
    redis_url: str
    run_tag: str  # unique per run: user names, layer prefixes and queues carry it
    scratch: Path  # a temp dir for logs and files, removed at the end unless a run fails
    group: ProcessGroup
    env: dict  # the environment for Django in child processes (see bench_env)
    baselines: dict = dataclasses.field(default_factory=dict)  # filled by bench.baselines

    def child_env(self, **extra: str) -> dict:
        env = dict(self.env)
        env.update(extra)
        return env


def bench_env(database_url: str, redis_url: str, run_tag: str) -> dict:
    """The environment every Django process of a run gets: production settings (no DEBUG), a
    channel-layer prefix of its own so runs never hear each other, Celery through the broker."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
        CHANNEL_LAYER_PREFIX=f"bench{run_tag}",
        EMAIL_URL="memorymail://",
        WEBPUSH_VAPID_PRIVATE_KEY="",
        WEBPUSH_VAPID_PUBLIC_KEY="",
        DJANGO_DEBUG="0",
        DJANGO_SECURE_SSL_REDIRECT="0",
        LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"),
        PYTHONUNBUFFERED="1",
    )
    # The benchmarks send far more than a person's 120 messages a minute from one account.
    env.setdefault("MESSAGE_RATE_PER_MINUTE", "0")
    env.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(48))
    return env


def setup_django(env: dict) -> None:
    """Django in this process, with the run's environment (idempotent)."""
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# ---- Statistics -------------------------------------------------------------------------------


def summarize_ns(values_ns: list[int]) -> dict:
    """n, p50/p95/p99/max/mean in milliseconds (nearest-rank percentiles)."""
    if not values_ns:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    ordered = sorted(values_ns)

    def rank(p: float) -> float:
        index = max(0, math.ceil(p / 100 * len(ordered)) - 1)
        return round(ordered[index] / 1e6, 3)

    return {
        "n": len(ordered),
        "p50": rank(50),
        "p95": rank(95),
        "p99": rank(99),
        "max": round(ordered[-1] / 1e6, 3),
        "mean": round(sum(ordered) / len(ordered) / 1e6, 3),
    }


def ratio(value, base):
    return round(value / base, 2) if value is not None and base else None


# ---- Processes --------------------------------------------------------------------------------


class ProcessGroup:
    """Every child a run starts, so that all of them are stopped on any exit."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(
        self, name: str, argv: list[str], env: dict, *, capture_stdout: bool = False
    ) -> subprocess.Popen:
        with open(self.log_dir / f"{name}.log", "wb") as log_file:
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE if capture_stdout else log_file,
                stderr=log_file,
                stdin=subprocess.DEVNULL,
                # Own session: a Ctrl-C in the terminal reaches only us; we stop the children in order.
                start_new_session=True,
            )
        self.children.append((name, process))
        return process

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, process: subprocess.Popen, timeout: float = 10) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait(timeout=5)
        self.children = [(n, p) for n, p in self.children if p is not process]

    def stop_all(self) -> None:
        for _name, process in self.children:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        deadline = time.monotonic() + 10
        for _name, process in self.children:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait(timeout=5)
        self.children.clear()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process, from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process and its live children (a worker's pool), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, found = 0.0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / ticks
            found = True
    return round(total, 3) if found else None


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a process, from /proc/<pid>/status (VmRSS)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


class CpuMeter:
    """CPU seconds used by each server process and by this client between two points: the
    split between the load generator and the servers that every load benchmark reports."""

    def __init__(self, servers: dict[str, int]):
        self.servers = servers

    def snapshot(self) -> dict:
        times = os.times()
        values = {name: tree_cpu_seconds(pid) for name, pid in self.servers.items()}
        values["bench_client"] = times.user + times.system
        return {"wall": time.monotonic(), "cpu": values}

    @staticmethod
    def between(before: dict, after: dict) -> dict:
        wall = after["wall"] - before["wall"]
        result = {"wall_seconds": round(wall, 3)}
        for name, start in before["cpu"].items():
            end = after["cpu"].get(name)
            if start is None or end is None:
                continue
            used = end - start
            result[name] = {"cpu_seconds": round(used, 3), "percent_of_one_core": round(100 * used / wall, 1)}
        return result

    @staticmethod
    def shares(split: dict) -> str:
        """ "daphne-1 40%, bench_client 30%" from `between`."""
        return ", ".join(
            f"{name} {value['percent_of_one_core']}%"
            for name, value in split.items()
            if isinstance(value, dict) and "percent_of_one_core" in value
        )


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args[:2])} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


async def wait_healthy(base_url: str, process: subprocess.Popen, name: str, group: ProcessGroup) -> None:
    import httpx

    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{group.log_tail(name)}")
            with contextlib.suppress(httpx.HTTPError):
                response = await client.get(f"{base_url}/healthz")
                if response.status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{name} did not become healthy in 60 s:\n{group.log_tail(name)}")


async def start_servers(
    ctx: Context,
    count: int,
    *,
    app: str = "marketplace.asgi:application",
    label: str = "daphne",
    server: str = "daphne",
) -> dict[str, tuple[str, subprocess.Popen]]:
    """`count` server processes of `app` on free ports, healthy: {name: (base_url, process)}.
    `server` is "daphne" (the product's) or "uvicorn" (the comparison)."""
    servers = {}
    for index in range(1, count + 1):
        port = free_port()
        name = f"{label}-{index}"
        if server == "daphne":
            argv = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app]
        else:
            argv = [PYTHON, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), app]
            argv.insert(-1, "--no-access-log")
        servers[name] = (f"http://127.0.0.1:{port}", ctx.group.start(name, argv, ctx.env))
    await asyncio.gather(
        *(wait_healthy(url, process, name, ctx.group) for name, (url, process) in servers.items())
    )
    return servers


# ---- A raw ASGI websocket echo: what daphne alone costs (B-ws) --------------------------------


async def ws_echo_app(scope, receive, send):
    """Echo every text frame back. No Channels, no Django. Served as bench.stack:ws_echo_app."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await receive()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if scope["type"] != "websocket":
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})
        elif message["type"] == "websocket.disconnect":
            return


# ---- Users for load: many verified users with API tokens, quickly -----------------------------


def make_bench_users(count: int, run_tag: str, *, prefix: str = "u", seller: bool = False) -> list[tuple]:
    """`count` verified users named bench_<prefix><i>_<run_tag>, each with an API token:
    [(user, raw_token)]. One password hash for all (hashing 1,000 passwords would take minutes).
    Needs setup_django() first."""
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from marketplace.accounts.models import Profile, User
    from marketplace.accounts.services import ensure_profile, issue_api_token

    password = make_password(secrets.token_urlsafe(16))
    now = timezone.now()
    users = User.objects.bulk_create(
        [
            User(username=f"bench_{prefix}{i}_{run_tag}", password=password, email_verified_at=now)
            for i in range(count)
        ]
    )
    role = Profile.Role.SELLER if seller else Profile.Role.BUYER
    out = []
    for user in users:
        ensure_profile(user=user)
        _token, raw = issue_api_token(user=user)
        out.append((user, raw))
    Profile.objects.filter(user__in=users).update(role=role)
    return out


def celery_queue_length(redis_url: str) -> int:
    import redis

    return redis.Redis.from_url(redis_url).llen("celery")


def drop_queued_tasks(redis_url: str, before: int) -> int:
    """No Celery worker runs here: drop the tasks the sends queued (response figures,
    notifications), so the next benchmark's worker does not inherit them."""
    import redis

    client = redis.Redis.from_url(redis_url)
    added = client.llen("celery") - before
    if added > 0:
        client.ltrim("celery", added, -1)  # kombu LPUSHes: the newest are on the left
    return max(0, added)


# ---- Machine and versions ---------------------------------------------------------------------


def machine_info() -> dict:
    cpu_model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory_gib = round(int(Path("/proc/meminfo").read_text().split()[1]) / 2**20, 1)
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model,
        "memory_gib": memory_gib,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def package_versions() -> dict:
    names = [
        "django", "channels", "channels-redis", "daphne", "uvicorn", "twisted", "django-ninja",
        "celery", "redis", "psycopg", "websockets", "httpx",
    ]  # fmt: skip
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def redis_server_version(redis_url: str) -> str | None:
    import redis

    try:
        return redis.Redis.from_url(redis_url, socket_timeout=2).info("server").get("redis_version")
    except redis.RedisError:
        return None


def redact(url: str) -> str:
    """A URL without its password, for the report."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))
    return url


# ---- Running one benchmark on its own ----------------------------------------------------------


def run_standalone(name: str, run, *, quick: bool, keep_logs: bool = False, **options) -> int:
    """`python -m bench.<name>` outside the suite: the same database, environment, migration
    and process group as `python -m bench`, then `run(ctx, **options)`. Prints the rows (stderr)
    and the result as JSON (stdout); 1 when a row is not met."""
    import dataclasses
    import json
    import shutil
    import signal
    import tempfile

    from bench.__main__ import ensure_database

    scratch = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    group = ProcessGroup(scratch)

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    run_tag = f"{time.strftime('%H%M%S')}{secrets.token_hex(2)}"
    started = time.monotonic()
    failed = True
    try:
        ensure_database(database_url)
        env = bench_env(database_url, redis_url, run_tag)
        log(f"{name}: database {redact(database_url)}, redis {redact(redis_url)}, run {run_tag}")
        manage(env, "migrate", "--noinput")
        ctx = Context(
            quick=quick, database_url=database_url, redis_url=redis_url, run_tag=run_tag,
            scratch=scratch, group=group, env=env,
        )  # fmt: skip
        result = asyncio.run(_call(run, ctx, options))
        failed = any(row.met is False for row in result.rows)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        group.stop_all()
        if keep_logs or failed:
            log(f"logs kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    report = {
        "benchmark": name,
        "command": " ".join([f"python -m bench.{name}", *sys.argv[1:]]),
        "quick": quick,
        "seconds": round(time.monotonic() - started),
        "machine": machine_info(),
        "rows": [dataclasses.asdict(row) for row in result.rows],
        "details": result.details,
    }
    print(json.dumps(report, indent=2, default=str))
    for row in result.rows:
        met = {True: "yes", False: "NO", None: "-"}[row.met]
        print(f"[{met}] {row.metric}: {row.measured}  (target: {row.target})", file=sys.stderr)
    return 1 if failed else 0


async def _call(run, ctx: Context, options: dict):
    result = run(ctx, **options)
    return await result if asyncio.iscoroutine(result) else result
