"""Settings that keep the site from being framed, sniffed, or opened from a foreign origin."""

import pytest
from django.conf import settings

from marketplace.websocket_auth import origin_allowed


def test_allowed_hosts_is_an_explicit_list():
    assert settings.ALLOWED_HOSTS
    assert "*" not in settings.ALLOWED_HOSTS
    assert not any(host in ("*", ".") for host in settings.ALLOWED_HOSTS)


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://evil.example",
        "http://127.0.0.1.evil.example:8000",
        "http://evil.example/127.0.0.1",
        "null",
        "",
        "ftp://127.0.0.1:8000",
        "file://127.0.0.1",
        "javascript://127.0.0.1",
        "ws://127.0.0.1:8000",
        "http://",
        "127.0.0.1:8000",
    ],
)
def test_websocket_origin_validator_refuses_foreign_or_odd_origins(origin):
    assert origin_allowed(origin) is False


@pytest.mark.parametrize(
    "origin",
    ["http://127.0.0.1:8000", "https://127.0.0.1:8000", "http://localhost:8000", "http://127.0.0.1"],
)
def test_websocket_origin_validator_accepts_the_site_itself(origin):
    assert origin_allowed(origin) is True


def test_websocket_origin_validator_follows_allowed_hosts(settings):
    settings.ALLOWED_HOSTS = ["inbox.example.com"]

    assert origin_allowed("https://inbox.example.com") is True
    assert origin_allowed("http://127.0.0.1:8000") is False


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.test",
        "https://inbox.example.com.evil.test",  # the site's name as a subdomain of another
        "https://api.inbox.example.com",  # a subdomain ALLOWED_HOSTS does not declare
        "http://inbox.example.com",  # the site, downgraded to plain http
        "null",
        "",
    ],
)
def test_in_production_only_the_sites_own_https_origin_opens_a_socket(settings, origin):
    settings.ALLOWED_HOSTS = ["inbox.example.com"]
    settings.SECURE_SSL_REDIRECT = True

    assert origin_allowed(origin) is False
    assert origin_allowed("https://inbox.example.com") is True


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/healthz", "/api/v1/openapi.json"])
def test_pages_forbid_framing_and_sniffing(client, path):
    response = client.get(path)

    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_pages_for_a_member_forbid_framing_too(client, buyer):
    client.force_login(buyer)

    response = client.get("/accounts/profile/")

    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_a_request_for_a_foreign_host_is_refused(client):
    response = client.get("/", HTTP_HOST="evil.example")

    assert response.status_code == 400


def test_session_and_csrf_cookies_are_not_readable_by_scripts_or_sent_cross_site():
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SESSION_COOKIE_SAMESITE in ("Lax", "Strict")
    assert settings.CSRF_COOKIE_SAMESITE in ("Lax", "Strict")
