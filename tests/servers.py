"""Real daphne processes serving the test database, for multi-process and browser tests."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from django.conf import settings
from django.db import connection

PROJECT_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shared_database_url() -> str:
    """DATABASE_URL for the database this test run uses (pytest-django's test database)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    if db["ENGINE"] == "django.db.backends.postgresql":
        credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    raise RuntimeError(f"no DATABASE_URL form for {db['ENGINE']}")


class DaphneServers:
    def __init__(self):
        self.processes: list[subprocess.Popen] = []

    def start(
        self,
        *,
        redis_url: str | None = None,
        redis_prefix: str | None = None,
        database_url: str | None = None,
        timeout: float = 30,
    ) -> str:
        """Start one daphne process and return its base URL once /healthz answers.
        `database_url` replaces the test database's URL (the same database through a fault proxy)."""
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
        env.update(
            DJANGO_SETTINGS_MODULE="marketplace.settings",
            DATABASE_URL=database_url or shared_database_url(),
            PYTHONUNBUFFERED="1",
            MESSAGE_MAX_LENGTH=str(settings.MESSAGE_MAX_LENGTH),
            # Uploaded files go where this test's settings say (a test sets a temporary folder).
            MEDIA_ROOT=str(settings.MEDIA_ROOT),
        )
        if redis_url:
            env["REDIS_URL"] = redis_url
            env["CHANNEL_LAYER_PREFIX"] = redis_prefix or "inbox"
        log_path = PROJECT_DIR / ".pytest_cache" / f"daphne-{port}.log"
        log_path.parent.mkdir(exist_ok=True)
        log = open(log_path, "w")  # noqa: SIM115 -- lives as long as the process
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                # As in production (Dockerfile, docker-compose.yml): refuse websocket frames over 64 KiB.
                "--websocket-max-message-size",
                str(settings.DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE),
                "--websocket-max-frame-size",
                str(settings.DAPHNE_WEBSOCKET_MAX_FRAME_SIZE),
                "marketplace.asgi:application",
            ],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"daphne exited with {process.returncode}; see {log_path}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    return base_url
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"daphne did not become healthy in {timeout}s; see {log_path}")

    def stop_all(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()


def worker_environment(broker_url: str, **extra: str) -> dict:
    """The environment of a process configured like production's: Celery on a Redis broker."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env.update(
        DATABASE_URL=shared_database_url(), CELERY_BROKER_URL=broker_url, PYTHONUNBUFFERED="1", **extra
    )
    return env


def start_celery_worker(
    env: dict, log_path: Path, *, pool: str = "solo", timeout: float = 60
) -> subprocess.Popen:
    """A real Celery worker on the test database; returns once it says it is ready."""
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "marketplace", "worker", f"--pool={pool}",
             "--concurrency=1", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--loglevel=info"],
            cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    while "ready." not in log_path.read_text():
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise RuntimeError(f"the Celery worker did not start; see {log_path}")
        time.sleep(0.2)
    return worker


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
