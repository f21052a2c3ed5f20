"""Every 4xx under /api/ is JSON {"error", "detail"}, whoever answers it."""

import pytest
from django.test import Client

from tests.factories import TEST_PASSWORD, bearer_headers

pytestmark = pytest.mark.django_db


def assert_json_error(response, status: int, code: str):
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["detail"], str) and body["detail"]


@pytest.mark.parametrize(
    "path", ["/api/v1/no-such-thing", "/api/v1/conversations/abc/messages", "/api/v1/conversations/1/nope"]
)
def test_unknown_api_paths_answer_json_404(client, buyer, path):
    assert_json_error(client.get(path, **bearer_headers(buyer)), 404, "not_found")


def test_a_wrong_method_answers_json_405_and_says_what_is_allowed(client, buyer):
    response = client.delete("/api/v1/conversations", **bearer_headers(buyer))
    assert_json_error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"] and "POST" in response["Allow"]
    assert "GET" in response.json()["detail"]


def test_a_session_post_without_csrf_token_answers_json_403_and_stores_nothing(buyer, seller):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(buyer)
    response = browser.post(
        "/api/v1/conversations", {"recipient": "seller", "body": "hello"}, content_type="application/json"
    )
    assert_json_error(response, 403, "forbidden")
    assert not buyer.memberships.exists()


def test_a_username_with_a_nul_is_refused_not_a_server_error(client, buyer):
    response = client.post(
        "/api/v1/auth/token",
        {"username": "buy\x00er", "password": TEST_PASSWORD},
        content_type="application/json",
    )
    assert_json_error(response, 422, "invalid_input")


def test_pages_outside_the_api_keep_their_html_errors(client, buyer):
    client.force_login(buyer)
    response = client.get("/inbox/999999/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")
