"""Celery settings that keep tasks from being lost, run in a loop, or deserialised unsafely."""

import ast
import re
from pathlib import Path

import yaml
from django.conf import settings

from marketplace.celery import app

PROJECT_DIR = Path(__file__).resolve().parent.parent
APP_DIRS = [
    "marketplace",
    "inbox",
    "orders",
    "notifications",
    "moderation",
    "sellers",
    "attachments",
    "outbox",
]


def countdown_settings_in_code() -> dict[str, int]:
    """Every `countdown=` the product passes, by the setting that gives it. A countdown that is
    not a setting fails here, so none can be added without this test seeing it."""
    found = {}
    for directory in APP_DIRS:
        for path in (PROJECT_DIR / directory).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.keyword) and node.arg == "countdown":
                    value = node.value
                    if isinstance(value, ast.Name) and value.id == "countdown":
                        continue  # outbox.services passes on what it was given
                    assert (
                        isinstance(value, ast.Attribute)
                        and isinstance(value.value, ast.Name)
                        and value.value.id == "settings"
                    ), f"{path.relative_to(PROJECT_DIR)}:{node.value.lineno}: countdown is not a setting"
                    found[value.attr] = getattr(settings, value.attr)
    return found


def test_every_countdown_and_time_limit_ends_well_before_the_visibility_timeout():
    # A task not acknowledged within the visibility timeout is delivered again (and a countdown
    # beyond it runs again and again); with late acks that includes the time the task runs.
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    countdowns = countdown_settings_in_code()

    assert set(countdowns) == {"NOTIFICATION_BATCH_SECONDS", "NOTIFICATION_EMAIL_DELAY_SECONDS"}
    for name, seconds in countdowns.items():
        assert seconds + app.conf.task_time_limit < visibility / 2, name
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit < visibility / 2


def test_tasks_are_acknowledged_after_they_ran_and_requeued_when_their_worker_dies():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1


def test_only_json_crosses_the_broker():
    assert app.conf.task_serializer == "json"
    assert app.conf.result_serializer == "json"
    assert list(app.conf.accept_content) == ["json"]
    assert app.conf.result_accept_content in (None, ["json"])
    assert app.conf.event_serializer == "json"


def test_publishing_gives_up_quickly_when_the_broker_is_down():
    # The task stays in the outbox for the relay; a request must not wait seconds for it.
    options = app.conf.broker_transport_options
    assert options["max_retries"] <= 1
    assert options["interval_start"] + options["interval_max"] * options["max_retries"] <= 0.5


def test_redis_in_the_compose_stack_never_evicts_keys():
    # Evicted broker keys lose queued tasks (kombu's InconsistencyError).
    compose = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())
    command = " ".join(compose["services"]["redis"]["command"])
    assert re.search(r"--maxmemory-policy\s+noeviction", command)
