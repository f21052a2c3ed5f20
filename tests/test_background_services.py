"""The environment switches reach real engines: a Celery worker on Redis, files in an S3 bucket."""

import os
import re
import subprocess
import sys
import time

import boto3
import httpx
import pytest
import redis
from django.test import Client

from marketplace.accounts.models import User
from tests.servers import PROJECT_DIR, free_port, start_celery_worker, stop_process, worker_environment


def wait_for(predicate, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def celery_worker_on_redis(transactional_db, redis_url, tmp_path):
    """A real worker process on a Redis broker (its own database index, emptied first)."""
    broker_url = redis_url.rsplit("/", 1)[0] + "/14"
    redis.Redis.from_url(broker_url).flushdb()
    log_path = tmp_path / "worker.log"
    worker = start_celery_worker(worker_environment(broker_url), log_path)
    try:
        yield broker_url, log_path
    finally:
        stop_process(worker)


@pytest.mark.needs_redis
def test_a_celery_worker_on_redis_sends_the_verification_email(celery_worker_on_redis):
    broker_url, log_path = celery_worker_on_redis
    # The sign-up service runs in a process configured like production: CELERY_BROKER_URL set,
    # so the email task goes through Redis to the worker instead of running in-process.
    signup = (
        "from marketplace.accounts.services import create_user\n"
        "create_user(username='newcomer', password='a-long-pass-phrase', email='newcomer@example.com',"
        " send_verification=True)\n"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", signup],
        cwd=PROJECT_DIR,
        env=worker_environment(broker_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "verify" not in result.stdout  # not sent by the web process itself

    link = wait_for(
        lambda: re.search(r"http://\S+/accounts/verify/(\S+)/", log_path.read_text()),
        timeout=30,
        what="the worker to print the verification email",
    )
    assert "To: newcomer@example.com" in log_path.read_text()
    response = Client().get(f"/accounts/verify/{link.group(1)}/")
    assert response.status_code == 302
    assert User.objects.get(username="newcomer").is_email_verified


@pytest.fixture
def s3_server():
    """moto's S3 in server mode: real HTTP, the same boto3 and django-storages code as AWS."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(endpoint, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, timeout=30, what="moto's S3 server")
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_files_go_to_the_bucket_when_one_is_configured(s3_server):
    bucket = "inbox-attachments"
    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_S3_REGION_NAME": "us-east-1",
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket=bucket)
    script = (
        "from django.core.files.base import ContentFile\n"
        "from django.core.files.storage import storages\n"
        "storage = storages['default']\n"
        "name = storage.save('proof/hello.txt', ContentFile(b'hello from the inbox'))\n"
        "print(type(storage).__name__, name, storage.url(name))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(credentials, AWS_STORAGE_BUCKET_NAME=bucket, AWS_S3_ENDPOINT_URL=s3_server)
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    backend, name, url = result.stdout.split()[-3:]

    assert backend == "S3Storage"
    stored = s3.get_object(Bucket=bucket, Key=name)["Body"].read()
    assert stored == b"hello from the inbox"
    assert "X-Amz-Expires=300" in url  # short-lived signed link, not a public object
    assert httpx.get(url).content == b"hello from the inbox"
