"""Failed logins are limited per username (LOGIN_FAILURES_PER_USERNAME) and per client IP
(LOGIN_FAILURES_PER_IP) on the login page and POST /api/v1/auth/token alike: beyond the limit
even the right password is refused with a wait, and a successful login clears the username's
count."""

import json
import logging
import time

import pytest
from django.test import Client

from marketplace.accounts.models import ApiToken
from tests.factories import TEST_PASSWORD

WRONG = "not-the-password"


@pytest.fixture(autouse=True)
def inside_one_window(settings):
    """Windows are aligned on the clock: start where the test cannot run past one's end."""
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    left = window - time.time() % window
    if left < 10:
        time.sleep(left + 0.01)


def log_in_page(client, username, password, ip="10.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def token(client, username, password, ip="10.0.0.1"):
    return client.post(
        "/api/v1/auth/token",
        data=json.dumps({"username": username, "password": password}),
        content_type="application/json",
        REMOTE_ADDR=ip,
    )


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_the_login_page_refuses_even_the_right_password_after_five_failures(buyer, seller):
    client = Client()
    for attempt in range(5):
        # Usernames are case-insensitive, and so is their count.
        failed = log_in_page(client, "BUYER" if attempt % 2 else "buyer", WRONG)
        assert failed.status_code == 200
        assert "correct username and password" in failed.content.decode()

    refused = log_in_page(client, "buyer", TEST_PASSWORD)

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) <= 900
    page = refused.content.decode()
    assert 'role="alert"' in page and "Too many failed logins for this account: try again in" in page
    assert not logged_in(client)
    # Another account from the same address is not locked out (5 failures < 20 per IP).
    assert log_in_page(client, "seller", TEST_PASSWORD).status_code == 302
    assert logged_in(client)


def test_the_token_endpoint_answers_429_with_a_wait_and_issues_no_token(settings, buyer):
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    client = Client()
    for _attempt in range(3):
        failed = token(client, "buyer", WRONG)
        assert failed.status_code == 401 and failed.json()["error"] == "invalid_credentials"

    refused = token(client, "buyer", TEST_PASSWORD)

    assert refused.status_code == 429
    body = refused.json()
    assert body["error"] == "rate_limited"
    assert body["detail"].startswith("Too many failed logins for this account: try again in")
    assert body["retry_after"] == int(refused["Retry-After"]) <= 900
    assert not ApiToken.objects.filter(user=buyer).exists()
    # The page and the API count together: the page refuses too.
    assert log_in_page(client, "buyer", TEST_PASSWORD).status_code == 429


def test_a_successful_login_clears_the_usernames_count(settings, buyer):
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    client = Client()
    for _attempt in range(2):
        assert token(client, "buyer", WRONG).status_code == 401
    assert token(client, "buyer", TEST_PASSWORD).status_code == 201
    for _attempt in range(2):
        assert log_in_page(client, "buyer", WRONG).status_code == 200

    # Five attempts before this one in the window, but the success between started over.
    assert token(client, "buyer", TEST_PASSWORD).status_code == 201


def test_too_many_failures_from_one_address_lock_that_address_only(settings, buyer, user_factory):
    settings.LOGIN_FAILURES_PER_IP = 3
    client = Client()
    for name in ("alice", "bob", "carol"):  # a different account each time, as a sprayer does
        assert token(client, name, WRONG, ip="203.0.113.9").status_code == 401

    refused = token(client, "buyer", TEST_PASSWORD, ip="203.0.113.9")
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Too many failed logins from your network: try again in")
    page = log_in_page(client, "buyer", TEST_PASSWORD, ip="203.0.113.9")
    assert page.status_code == 429 and not logged_in(client)

    assert token(client, "buyer", TEST_PASSWORD, ip="198.51.100.7").status_code == 201
    # The refusals from the locked address did not count against buyer's own limit.
    assert log_in_page(client, "buyer", TEST_PASSWORD, ip="198.51.100.7").status_code == 302


def test_the_right_password_works_again_once_the_window_has_passed(settings, buyer):
    settings.LOGIN_FAILURES_PER_USERNAME = 1
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 1
    left = 1 - time.time() % 1
    if left < 0.6:
        time.sleep(left + 0.01)
    client = Client()
    assert token(client, "buyer", WRONG).status_code == 401
    refused = token(client, "buyer", TEST_PASSWORD)
    assert refused.status_code == 429

    time.sleep(int(refused["Retry-After"]))

    assert token(client, "buyer", TEST_PASSWORD).status_code == 201


def test_with_redis_down_logins_still_work(settings, buyer, caplog):
    settings.LOGIN_FAILURES_PER_USERNAME = 1
    settings.CACHES = {  # nothing listens on port 1
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    client = Client()
    with caplog.at_level(logging.WARNING, logger="marketplace.ratelimit"):
        assert token(client, "buyer", WRONG).status_code == 401
        assert token(client, "buyer", TEST_PASSWORD).status_code == 201
    assert "the cache is unavailable" in caplog.text
