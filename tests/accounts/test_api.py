"""The accounts part of the JSON API: bearer tokens and /me."""

import json

import pytest

from marketplace.accounts.models import ApiToken
from tests.factories import TEST_PASSWORD, bearer_headers

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token"
ME_URL = "/api/v1/me"


def post_json(client, url, data, **headers):
    return client.post(url, data=json.dumps(data), content_type="application/json", **headers)


def bearer(raw_token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_token}"}


def obtain_token(client, username="buyer", password=TEST_PASSWORD) -> str:
    response = post_json(client, TOKEN_URL, {"username": username, "password": password})
    assert response.status_code == 201, response.content
    return response.json()["token"]


def test_post_token_with_the_right_password_returns_a_token(client, buyer):
    response = post_json(client, TOKEN_URL, {"username": "buyer", "password": TEST_PASSWORD})

    assert response.status_code == 201
    body = response.json()
    assert isinstance(body["token"], str)
    assert len(body["token"]) >= 32
    assert body["expires_at"]
    stored = ApiToken.objects.get(user=buyer)
    assert stored.prefix == body["token"][:8]
    assert body["token"] not in stored.digest


def test_post_token_with_a_wrong_password_is_401_json(client, buyer):
    response = post_json(client, TOKEN_URL, {"username": "buyer", "password": "not-the-password"})

    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == "invalid_credentials"
    assert body["detail"]
    assert "token" not in body
    assert not ApiToken.objects.exists()


def test_post_token_for_an_unknown_user_is_the_same_401(client):
    response = post_json(client, TOKEN_URL, {"username": "ghost", "password": TEST_PASSWORD})

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_credentials"


def test_post_token_for_a_deactivated_user_is_401(client, buyer):
    type(buyer).objects.filter(pk=buyer.pk).update(is_active=False)

    response = post_json(client, TOKEN_URL, {"username": "buyer", "password": TEST_PASSWORD})

    assert response.status_code == 401
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize(
    ("payload", "missing"),
    [({"username": "buyer"}, "password"), ({"password": TEST_PASSWORD}, "username"), ({}, "username")],
)
def test_post_token_with_missing_fields_is_422(client, buyer, payload, missing):
    response = post_json(client, TOKEN_URL, payload)

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_input"
    assert missing in body["detail"]
    assert not ApiToken.objects.exists()


def test_post_token_with_invalid_json_is_a_4xx_json_error(client, buyer):
    response = client.post(TOKEN_URL, data="{not json", content_type="application/json")

    assert 400 <= response.status_code < 500
    assert set(response.json()) >= {"error", "detail"}


def test_the_token_works_as_a_bearer_on_me(client, buyer):
    raw = obtain_token(client)

    response = client.get(ME_URL, **bearer(raw))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == buyer.pk
    assert body["username"] == "buyer"
    assert body["email"] == "buyer@example.com"
    assert body["email_verified"] is True
    assert body["profile"] == {
        "display_name": "Bella Buyer",
        "avatar_initials": "BB",
        "role": "buyer",
        "timezone": "Europe/Paris",
        "languages": ["English"],
        "enter_sends": True,
        "reading_language": "en",
        "accepts_new_sellers": True,
    }


def test_me_without_credentials_is_401_json(client):
    response = client.get(ME_URL)

    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "unauthorized"
    assert body["detail"]


@pytest.mark.parametrize("authorization", ["Bearer nope", "Bearer ", "Basic YnV5ZXI6cGFzcw==", "garbage"])
def test_me_with_a_bad_authorization_header_is_401(client, buyer, authorization):
    response = client.get(ME_URL, HTTP_AUTHORIZATION=authorization)

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_each_token_says_who_it_belongs_to(client, buyer, seller):
    buyer_token = obtain_token(client, "buyer")
    seller_token = obtain_token(client, "seller")

    assert client.get(ME_URL, **bearer(buyer_token)).json()["username"] == "buyer"
    assert client.get(ME_URL, **bearer(seller_token)).json()["username"] == "seller"


def test_delete_token_revokes_it(client, buyer):
    raw = obtain_token(client)
    assert client.get(ME_URL, **bearer(raw)).status_code == 200

    response = client.delete(TOKEN_URL, **bearer(raw))

    assert response.status_code == 204
    after = client.get(ME_URL, **bearer(raw))
    assert after.status_code == 401
    assert after.json()["error"] == "unauthorized"
    assert ApiToken.objects.get(user=buyer).revoked_at is not None


def test_delete_token_revokes_only_that_token(client, buyer):
    kept = obtain_token(client)
    revoked = obtain_token(client)

    client.delete(TOKEN_URL, **bearer(revoked))

    assert client.get(ME_URL, **bearer(revoked)).status_code == 401
    assert client.get(ME_URL, **bearer(kept)).status_code == 200


def test_delete_token_without_credentials_is_401(client):
    response = client.delete(TOKEN_URL)

    assert response.status_code == 401


def test_a_session_login_also_reaches_me(client, buyer):
    client.force_login(buyer)

    response = client.get(ME_URL)

    assert response.status_code == 200
    assert response.json()["username"] == "buyer"


@pytest.mark.django_db
def test_preferences_are_changed_with_patch_me_and_bad_values_change_nothing(client, buyer):
    headers = bearer_headers(buyer)
    response = client.patch(
        "/api/v1/me",
        {"enter_sends": False, "reading_language": "es"},
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 200
    assert response.json()["profile"]["enter_sends"] is False
    assert response.json()["profile"]["reading_language"] == "es"

    refused = client.patch(
        "/api/v1/me", {"reading_language": "xx"}, content_type="application/json", **headers
    )
    assert refused.status_code == 422
    assert refused.json()["error"] == "invalid_language"
    buyer.profile.refresh_from_db()
    assert (buyer.profile.enter_sends, buyer.profile.reading_language) == (False, "es")


@pytest.mark.django_db
def test_a_buyer_closes_the_door_to_new_sellers_over_the_api(client, buyer):
    headers = bearer_headers(buyer)
    response = client.patch(
        "/api/v1/me", {"accepts_new_sellers": False}, content_type="application/json", **headers
    )
    assert response.status_code == 200
    assert response.json()["profile"]["accepts_new_sellers"] is False
    buyer.profile.refresh_from_db()
    assert buyer.profile.accepts_new_sellers is False
    assert buyer.profile.enter_sends is True  # what the request did not name is unchanged
