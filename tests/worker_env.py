"""A pytest plugin loaded before Django's settings (`-p tests.worker_env` in pyproject.toml).

With several pytest-xdist workers, each gets a Redis database of its own: the presence, counter
and rate-limit keys are named after user ids, and every worker's test database starts its ids
at 1. The daphne and Celery processes a test starts inherit the variable."""

import os

worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if worker.startswith("gw") and os.environ.get("REDIS_URL"):
    base, _, index = os.environ["REDIS_URL"].rpartition("/")
    if index.isdigit():
        os.environ["REDIS_URL"] = f"{base}/{int(index) + 1 + int(worker[2:])}"
