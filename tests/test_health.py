"""GET /healthz: one answer per dependency, 503 naming the one that fails."""

import pytest

pytestmark = pytest.mark.django_db

CHECKS = {"database", "cache", "channel_layer", "broker"}
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def test_healthz_is_200_when_every_check_passes(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == CHECKS
    for name, result in body["checks"].items():
        assert result["ok"] is True, name
        assert result["detail"], name


def test_healthz_names_the_database_engine(client):
    from django.db import connection

    body = client.get("/healthz").json()

    assert body["checks"]["database"]["detail"] == connection.vendor


def test_healthz_needs_no_login(client, buyer):
    assert client.get("/healthz").status_code == 200
    client.force_login(buyer)
    assert client.get("/healthz").status_code == 200


def test_healthz_is_503_naming_an_unreachable_cache(client, settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": UNREACHABLE_REDIS}
    }

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    failing = {name for name, result in body["checks"].items() if not result["ok"]}
    assert failing == {"cache"}
    assert "Connection" in body["checks"]["cache"]["detail"]


def test_healthz_is_503_naming_an_unreachable_channel_layer(client, settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [UNREACHABLE_REDIS]},
        }
    }

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    failing = {name for name, result in body["checks"].items() if not result["ok"]}
    assert failing == {"channel_layer"}
    assert body["checks"]["channel_layer"]["detail"]


def test_healthz_names_the_cache_backend(client, settings):
    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[1]

    assert client.get("/healthz").json()["checks"]["cache"]["detail"] == backend


def test_healthz_on_redis_really_round_trips(client, redis_channel_layer):
    response = client.get("/healthz")

    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["cache"] == {"ok": True, "detail": "RedisCache"}
    assert checks["channel_layer"] == {"ok": True, "detail": "RedisPubSubChannelLayer"}


def test_healthz_only_answers_get(client):
    assert client.post("/healthz").status_code == 405
