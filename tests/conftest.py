"""Shared fixtures.

Tests that need Redis, a browser or several server processes skip when the service is missing
on a developer's machine, and FAIL when INBOX_REQUIRE_SERVICES=1 (set by .ci/run): CI never
passes by skipping them.
"""

import os
import shutil
import uuid

import pytest
import redis
from django.contrib.auth.hashers import make_password

from tests.factories import TEST_PASSWORD, make_user
from tests.servers import DaphneServers

REQUIRE_SERVICES = os.environ.get("INBOX_REQUIRE_SERVICES") == "1"
CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def service_unavailable(reason: str):
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (INBOX_REQUIRE_SERVICES=1: this test must run, not skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def password_hash():
    """One real argon2 hash of TEST_PASSWORD, computed once (hashing costs ~150 ms)."""
    return make_password(TEST_PASSWORD)


@pytest.fixture
def user_factory(db, password_hash):
    def create(username=None, **kwargs):
        return make_user(username or f"user{uuid.uuid4().hex[:8]}", password_hash=password_hash, **kwargs)

    return create


@pytest.fixture
def buyer(user_factory):
    return user_factory("buyer", display_name="Bella Buyer", timezone_name="Europe/Paris")


@pytest.fixture
def seller(user_factory):
    return user_factory("seller", seller=True, display_name="Sam Seller", timezone_name="Asia/Tokyo")


@pytest.fixture
def stranger(user_factory):
    return user_factory("stranger", display_name="Stan Stranger")


@pytest.fixture(scope="session")
def redis_url():
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        service_unavailable(f"Redis is not reachable at {url}: {exc}")
    return url


@pytest.fixture
def redis_channel_layer(settings, redis_url):
    """Route this test's channel layer (and cache) through the real Redis, under a fresh prefix."""
    prefix = f"test{uuid.uuid4().hex[:10]}"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": prefix},
        }
    }
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": prefix,
        }
    }
    return prefix


@pytest.fixture
def channel_layer(settings):
    """The in-memory layer, whatever REDIS_URL says: for tests that listen in this process."""
    from channels.layers import get_channel_layer

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return get_channel_layer()


@pytest.fixture
def daphne_servers(transactional_db):
    """Start real daphne processes on the test database: `daphne_servers.start(redis_prefix=...)`."""
    servers = DaphneServers()
    yield servers
    servers.stop_all()


@pytest.fixture(scope="session")
def chromium_path():
    if not (os.path.exists(CHROMIUM_PATH) or shutil.which(CHROMIUM_PATH)):
        service_unavailable(f"Chromium is not installed at {CHROMIUM_PATH} (apt-get install -y chromium)")
    return CHROMIUM_PATH


@pytest.fixture
async def close_sync_thread_connections():
    """Async tests touch the database from asgiref's sync thread; close that thread's connection
    afterwards, or PostgreSQL refuses to drop the test database at the end of the run."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture(autouse=True)
def roomy_messaging_limit(settings):
    """Tests write to many new people quickly; the limits themselves are tested in
    tests/moderation, which sets its own (and empties the counters)."""
    settings.MODERATION_NEW_CONTACTS_PER_HOUR = 10_000
    settings.MODERATION_NEW_ACCOUNT_NEW_CONTACTS_PER_HOUR = 10_000
    # Test users are all new accounts sending alike texts quickly: the spam scanner's own tests
    # set these low again.
    settings.MODERATION_NEW_ACCOUNT_BURST = 10_000
    settings.MODERATION_BLAST_RECIPIENTS = 10_000


@pytest.fixture(autouse=True)
def fresh_rate_limits(settings):
    """Each test counts sends and failed logins from zero (the counters live in Redis, which
    outlives a test): the limits keep their real values, under a key prefix of the test's own."""
    settings.RATE_LIMIT_KEY_PREFIX = f"ratelimit-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def staff(user_factory):
    """A superuser in the Django admin (moderates, sees orders and messages)."""
    from marketplace.accounts.services import grant_staff

    user = user_factory("boss", display_name="Olga Operator")
    grant_staff(user=user)
    return user


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client
