"""docker-compose.yml is accepted by Compose and wires every process to the same services."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import service_unavailable

PROJECT_DIR = Path(__file__).resolve().parent.parent


def compose_command() -> list[str]:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    service_unavailable("neither `docker compose` nor `docker-compose` is installed")
    return []


@pytest.fixture(scope="module")
def compose_config():
    command = compose_command()
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "DJANGO_SECRET_KEY": "x" * 50,
        "MINIO_ROOT_PASSWORD": "secret-pw",
    }
    result = subprocess.run(
        [*command, "-f", "docker-compose.yml", "config", "--format", "json"]
        if command == ["docker", "compose"]
        else [*command, "-f", "docker-compose.yml", "config"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    if command == ["docker", "compose"]:
        return json.loads(result.stdout)
    import yaml

    return yaml.safe_load(result.stdout)


def test_compose_defines_the_production_stack(compose_config):
    services = compose_config["services"]
    assert {"postgres", "redis", "minio", "web", "worker", "beat"} <= set(services)
    assert "daphne" in " ".join(services["web"]["command"])
    assert "worker" in services["worker"]["command"]
    assert "beat" in services["beat"]["command"]


def test_web_worker_and_beat_share_the_same_services(compose_config):
    services = compose_config["services"]
    names = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "AWS_STORAGE_BUCKET_NAME", "DJANGO_SECRET_KEY")
    envs = [services[name]["environment"] for name in ("web", "worker", "beat")]
    for name in names:
        values = {env[name] for env in envs}
        assert len(values) == 1, f"{name} differs between processes: {values}"
    assert envs[0]["DATABASE_URL"].startswith("postgres://")
    assert envs[0]["REDIS_URL"].startswith("redis://redis:")
    assert envs[0]["DJANGO_DEBUG"] == "0"
