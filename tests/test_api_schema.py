"""The schema at /api/v1/openapi.json says what the API accepts: its links, its body rules, and
the patterns it declares for rules the services check (the same strings pass both)."""

import base64
import json
import re

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from attachments.services import NAME_MAX, NAME_PATTERN, clean_name
from inbox.placeholders import (
    AUTO_REPLY_PLACEHOLDERS,
    QUICK_RESPONSE_PLACEHOLDERS,
    ensure_known_placeholders,
    known_placeholders_pattern,
)
from inbox.services import validate_message_body
from marketplace.api import LINKS
from marketplace.errors import InvalidInput
from marketplace.patterns import NOT_BLANK
from orders.services import PRICE_PATTERN, clean_price
from tests.factories import bearer_headers, buyer_opens_conversation

# Text with what the patterns are about: spaces of every kind, control characters, dots, NULs.
TRICKY = st.text(
    alphabet=st.sampled_from(" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2000\u3000\ufeff\x00\x01\x7f./\\\u202eab5.0")
    | st.characters(),
    max_size=12,
)


def _accepted(check, value) -> bool:
    try:
        check(value)
    except InvalidInput:
        return False
    return True


@given(TRICKY)
@hypothesis_settings(max_examples=300, deadline=None)
def test_the_message_pattern_is_what_the_message_check_accepts(text):
    assert bool(re.fullmatch(NOT_BLANK, text)) == _accepted(validate_message_body, text)


PLACEHOLDER_PIECES = [
    "{buyer_name}", "{order_number}", "{seller_name}", "{nmae}", "{x}", "{}", "{A}", "{", "}", "hi ", "\n",
    "{buyer_first_name", "{{seller_name}}", "{a_b}",
]  # fmt: skip
PLACEHOLDER_TEXT = st.lists(st.sampled_from(PLACEHOLDER_PIECES), max_size=6).map("".join)


@pytest.mark.parametrize("allowed", [AUTO_REPLY_PLACEHOLDERS, QUICK_RESPONSE_PLACEHOLDERS])
@given(text=PLACEHOLDER_TEXT)
@hypothesis_settings(max_examples=300, deadline=None)
def test_the_placeholder_pattern_is_what_the_placeholder_check_accepts(allowed, text):
    pattern = known_placeholders_pattern(allowed)
    accepted = _accepted(lambda value: ensure_known_placeholders(value, allowed), text)
    assert bool(re.match(pattern, text)) == accepted


@given(TRICKY)
@hypothesis_settings(max_examples=300, deadline=None)
def test_the_file_name_pattern_is_what_clean_name_accepts(name):
    declared = bool(re.fullmatch(NAME_PATTERN, name)) and len(name) <= NAME_MAX
    assert declared == _accepted(clean_name, name)


@pytest.mark.parametrize("name", ["a.txt", " report.pdf ", ".bashrc", ". .", "..", ".", "..x", "a\tb", " \t"])
def test_the_file_name_pattern_on_the_edges(name):
    assert bool(re.fullmatch(NAME_PATTERN, name)) == _accepted(clean_name, name)


@given(st.text(alphabet="0123456789. \t-e", max_size=9))
@hypothesis_settings(max_examples=300, deadline=None)
def test_the_price_pattern_is_what_clean_price_accepts(text):
    assert bool(re.fullmatch(PRICE_PATTERN, text)) == _accepted(clean_price, text)


@pytest.mark.parametrize(
    ("price", "ok"), [("5", True), ("4.99", False), ("50000.00", True), ("50000.01", False)]
)
def test_the_price_pattern_on_the_edges(price, ok):
    assert bool(re.fullmatch(PRICE_PATTERN, price)) == ok == _accepted(clean_price, price)


# --- the served schema ----------------------------------------------------------------------


def _served_schema(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def _resolve(schema, node, pointer: str):
    """The JSON Schema of the value at `pointer` (`#/items/0/id`) in a body of schema `node`."""
    for part in pointer.lstrip("#/").split("/"):
        while "$ref" in node:
            node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
        node = node["items"] if part.isdigit() else node["properties"][part]
    return node


def test_the_served_schema_links_every_producer_to_every_operation_taking_what_it_gives(client):
    schema = _served_schema(client)
    operations = {op["operationId"]: op for methods in schema["paths"].values() for op in methods.values()}
    for producer, produced in LINKS.items():
        answers = {s: r for s, r in operations[producer]["responses"].items() if s.startswith("2")}
        assert answers, producer
        for name, expression in produced.items():
            consumers = [
                operation_id
                for operation_id, op in operations.items()
                if operation_id != producer
                and any(p["in"] == "path" and p["name"] == name for p in op.get("parameters", ()))
            ]
            assert consumers, (producer, name)
            for answer in answers.values():
                body = answer["content"]["application/json"]["schema"]
                assert _resolve(schema, body, expression.removeprefix("$response.body"))["type"] in (
                    "integer",
                    "string",
                ), (producer, expression)
                for consumer in consumers:
                    assert answer["links"][consumer] == {
                        "operationId": consumer,
                        "parameters": {name: expression},
                    }


def test_the_conversation_links_reach_its_messages(client):
    links = _served_schema(client)["paths"]["/api/v1/conversations"]["post"]["responses"]["201"]["links"]
    assert links["inbox_api_send_message"]["parameters"] == {"conversation_id": "$response.body#/id"}


# --- bodies -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["[null, null]", "[]", '"x"', "5", "null", "true"])
def test_a_body_that_is_not_a_json_object_is_refused(client, buyer, body):
    response = client.patch("/api/v1/me", body, content_type="application/json", **bearer_headers(buyer))
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_input"


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["yes", "true", 1, 0])
def test_a_boolean_is_a_json_boolean(client, buyer, value):
    response = client.patch(
        "/api/v1/me", {"enter_sends": value}, content_type="application/json", **bearer_headers(buyer)
    )
    assert response.status_code == 422


@pytest.mark.django_db
def test_an_integer_is_a_json_number_not_text(client, buyer, seller):
    conversation = buyer_opens_conversation(buyer, seller)
    url = f"/api/v1/conversations/{conversation.pk}/read"
    last = conversation.messages.get().pk
    headers = bearer_headers(buyer)
    assert (
        client.post(
            url, {"up_to_message_id": str(last)}, content_type="application/json", **headers
        ).status_code
        == 422
    )
    assert (
        client.post(
            url, {"up_to_message_id": float(last)}, content_type="application/json", **headers
        ).status_code
        == 200
    )


# --- what the schema declared now holds -------------------------------------------------------


@pytest.mark.django_db
def test_a_cursor_outside_its_alphabet_is_refused_even_if_it_decodes(client, buyer, seller):
    buyer_opens_conversation(buyer, seller)
    issued = base64.urlsafe_b64encode(json.dumps({"at": "2026-01-01T00:00:00+00:00", "id": 5}).encode())
    forged = "!" + issued.decode().rstrip("=")  # base64 decoding would skip the "!"
    for url in (f"/api/v1/conversations?cursor={forged}", f"/api/v1/search?q=hi&cursor={forged}"):
        response = client.get(url, **bearer_headers(buyer))
        assert (response.status_code, response.json()["error"]) == (422, "invalid_cursor"), url


@pytest.mark.django_db
@pytest.mark.parametrize("cursor", ["%D9%A3", "-5", "+5", "%205"])
def test_a_thread_cursor_is_ascii_digits(client, buyer, seller, cursor):
    conversation = buyer_opens_conversation(buyer, seller)
    response = client.get(
        f"/api/v1/conversations/{conversation.pk}/messages?cursor={cursor}", **bearer_headers(buyer)
    )
    assert (response.status_code, response.json()["error"]) == (422, "invalid_cursor")


@pytest.mark.django_db
def test_a_colour_with_a_trailing_newline_is_refused_not_a_server_error(client, buyer):
    response = client.post(
        "/api/v1/labels",
        {"name": "Clients", "color": "#aabbcc\n"},
        content_type="application/json",
        **bearer_headers(buyer),
    )
    assert (response.status_code, response.json()["error"]) == (422, "invalid_color")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "endpoint", ["https://[", "https://", "https://push.example/a b", "http://push.example/x"]
)
def test_a_push_endpoint_that_is_no_https_url_is_refused_not_a_server_error(client, buyer, endpoint):
    response = client.post(
        "/api/v1/push-subscriptions",
        {"endpoint": endpoint, "keys": {"p256dh": "k" * 20, "auth": "a" * 10}},
        content_type="application/json",
        **bearer_headers(buyer),
    )
    assert (response.status_code, response.json()["error"]) == (422, "invalid_subscription")


@pytest.mark.django_db
def test_downloading_an_upload_still_in_progress_is_a_conflict_not_a_server_error(
    client, settings, buyer, seller, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    conversation = buyer_opens_conversation(buyer, seller)
    headers = bearer_headers(buyer)
    started = client.post(
        f"/api/v1/conversations/{conversation.pk}/uploads",
        {"name": "brief.pdf", "size": 10},
        content_type="application/json",
        **headers,
    ).json()
    response = client.get(f"/api/v1/attachments/{started['attachment_id']}/download", **headers)
    assert (response.status_code, response.json()["error"]) == (409, "upload_in_progress")


@pytest.mark.django_db
def test_one_label_too_many_is_a_conflict_not_invalid_input(client, buyer):
    from inbox.services import create_label
    from inbox.services.filing import MAX_LABELS_PER_USER

    for number in range(MAX_LABELS_PER_USER):
        create_label(user=buyer, name=f"Label {number}")
    response = client.post(
        "/api/v1/labels", {"name": "One more"}, content_type="application/json", **bearer_headers(buyer)
    )
    assert (response.status_code, response.json()["error"]) == (409, "too_many_labels")
