"""Usernames are one per person whatever their case: "Carla" and "carla" are the same account."""

import pytest
from django.db import IntegrityError, transaction

from marketplace.accounts.models import User
from tests.factories import TEST_PASSWORD, bearer_headers

pytestmark = pytest.mark.django_db


def test_logging_in_ignores_the_case_of_the_username(client, user_factory):
    user_factory("Carla")
    response = client.post("/accounts/login/", {"username": "carla", "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert client.get("/api/v1/me").json()["username"] == "Carla"


def test_a_token_can_be_asked_for_in_any_case(client, user_factory):
    user_factory("Carla")
    response = client.post(
        "/api/v1/auth/token",
        {"username": "CARLA", "password": TEST_PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 201


def test_the_database_refuses_a_second_user_differing_only_in_case(user_factory):
    user_factory("Carla")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user(username="cARLA", password=None)


def test_writing_to_a_username_in_another_case_reaches_the_same_person(client, buyer, seller):
    response = client.post(
        "/api/v1/conversations",
        {"recipient": "SELLER", "body": "Hello!"},
        content_type="application/json",
        **bearer_headers(buyer),
    )
    assert response.status_code == 201
    assert response.json()["other_user"]["username"] == "seller"
    assert client.get("/u/Seller/").status_code == 200
