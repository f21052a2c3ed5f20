"""The JSON API under /api/v1/ as an integration sees it: shapes, status codes, auth, and errors
that are always JSON 4xx, never a 5xx."""

import json
import uuid
from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from inbox.models import Conversation, Event, Message
from inbox.services import get_or_create_conversation, prune_event_log, send_message, start_conversation
from tests.factories import TEST_PASSWORD, bearer_headers
from tests.helpers import listen, received

API = "/api/v1"
MESSAGE_KEYS = {"id", "conversation_id", "sender", "body", "status", "client_id", "created_at", "edited_at"}
CONVERSATION_KEYS = {"id", "other_user", "last_message", "unread_count"}
USER_KEYS = {"id", "username", "display_name", "avatar_initials", "is_seller", "timezone"}


# --- helpers -------------------------------------------------------------------------------


class Api:
    """A client of the API: Django's test client plus the user's bearer token (or none)."""

    def __init__(self, user=None, *, client: Client | None = None):
        self.client = client or Client()
        self.headers = bearer_headers(user) if user is not None else {}

    def _checked(self, response):
        assert response.status_code < 500, response.content
        return response

    def get(self, path, params=None):
        return self._checked(self.client.get(API + path, params or {}, **self.headers))

    def post(self, path, payload=None, *, raw: str | bytes | None = None, content_type="application/json"):
        data = raw if raw is not None else ("" if payload is None else json.dumps(payload))
        return self._checked(
            self.client.post(API + path, data=data, content_type=content_type, **self.headers)
        )

    def request(self, method, path, **kwargs):
        return self._checked(self.client.generic(method, API + path, **kwargs, **self.headers))


@pytest.fixture
def api_as():
    return Api


def assert_error(response, status: int, code: str | None = None) -> dict:
    """A 4xx answer: JSON with a machine-readable `error` and a human `detail`."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str)
    assert body["error"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    if code is not None:
        assert body["error"] == code, body
    return body


def assert_message_shape(message: dict) -> None:
    assert set(message) >= MESSAGE_KEYS
    assert isinstance(message["id"], int)
    assert isinstance(message["conversation_id"], int)
    assert isinstance(message["sender"], str)
    assert message["status"] in {"visible", "held", "rejected"}
    uuid.UUID(message["client_id"])
    assert datetime.fromisoformat(message["created_at"].replace("Z", "+00:00")).tzinfo is not None
    assert message["edited_at"] is None or datetime.fromisoformat(message["edited_at"].replace("Z", "+00:00"))


def assert_conversation_shape(conversation: dict) -> None:
    assert set(conversation) >= CONVERSATION_KEYS
    assert set(conversation["other_user"]) >= USER_KEYS
    assert isinstance(conversation["unread_count"], int)
    if conversation["last_message"] is not None:
        assert_message_shape(conversation["last_message"])


def walk(api: Api, path: str, *, limit: int, cursor_param: str = "cursor", start=None) -> tuple[list, int]:
    items, cursor, pages = [], start, 0
    while True:
        params = {"limit": limit}
        if cursor is not None:
            params[cursor_param] = cursor
        response = api.get(path, params)
        assert response.status_code == 200, response.content
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        items.extend(page["items"])
        pages += 1
        if page["next_cursor"] is None:
            return items, pages
        cursor = page["next_cursor"]
        assert pages < 100


@pytest.fixture
def conversation(buyer, seller):
    conversation, _, _ = start_conversation(
        sender=buyer, recipient_username="seller", body="Hi, is the logo gig open?"
    )
    return conversation


# --- authentication --------------------------------------------------------------------------


def test_a_token_from_username_and_password_opens_the_api(buyer):
    anonymous = Api()
    response = anonymous.post("/auth/token", {"username": "buyer", "password": TEST_PASSWORD})
    assert response.status_code == 201, response.content
    token = response.json()["token"]

    me = Client().get(f"{API}/me", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert me.status_code == 200
    assert me.json()["username"] == "buyer"
    assert me.json()["profile"]["display_name"] == "Bella Buyer"


def test_a_wrong_password_gets_no_token(buyer):
    response = Api().post("/auth/token", {"username": "buyer", "password": "not-the-password"})

    assert_error(response, 401, "invalid_credentials")


ENDPOINTS = [
    ("GET", "/me"),
    ("GET", "/conversations"),
    ("POST", "/conversations"),
    ("GET", "/conversations/{id}"),
    ("GET", "/conversations/{id}/messages"),
    ("POST", "/conversations/{id}/messages"),
    ("POST", "/conversations/{id}/read"),
    ("POST", "/conversations/{id}/typing"),
    ("GET", "/events"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("authorization", [None, "Bearer not-a-real-token", "Basic YnV5ZXI6cGFzcw=="])
def test_without_valid_credentials_every_endpoint_answers_401(conversation, method, path, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    body = json.dumps({"recipient": "seller", "body": "hi"})
    response = Client().generic(
        method, API + path.format(id=conversation.pk), body, content_type="application/json", **headers
    )

    assert_error(response, 401, "unauthorized")
    assert Message.objects.count() == 1


def test_a_deactivated_users_token_stops_working(buyer, conversation):
    api = Api(buyer)
    assert api.get("/me").status_code == 200
    buyer.is_active = False
    buyer.save(update_fields=["is_active"])

    assert_error(api.get("/conversations"), 401, "unauthorized")


def test_a_session_login_works_like_a_token(client, buyer, conversation):
    client.force_login(buyer)
    api = Api(client=client)

    listed = api.get("/conversations")
    sent = api.post(f"/conversations/{conversation.pk}/messages", {"body": "from the browser"})

    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()["items"]] == [conversation.pk]
    assert sent.status_code == 201
    assert sent.json()["sender"] == "buyer"


def test_a_session_post_without_csrf_token_is_refused(buyer, conversation):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(buyer)

    response = Api(client=browser).post(f"/conversations/{conversation.pk}/messages", {"body": "forged"})

    assert_error(response, 403)
    assert not Message.objects.filter(body="forged").exists()


def test_a_session_post_with_the_csrf_token_is_accepted(buyer, conversation):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(buyer)
    assert browser.get(f"/inbox/{conversation.pk}/").status_code == 200  # the page sets the CSRF cookie
    token = browser.cookies["csrftoken"].value

    response = browser.post(
        f"{API}/conversations/{conversation.pk}/messages",
        data=json.dumps({"body": "from my tab"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 201, response.content
    assert Message.objects.filter(body="from my tab").count() == 1


def test_a_bearer_post_needs_no_csrf_token(buyer, conversation):
    api = Api(buyer, client=Client(enforce_csrf_checks=True))

    response = api.post(f"/conversations/{conversation.pk}/messages", {"body": "from a script"})

    assert response.status_code == 201, response.content


def test_me_describes_the_caller(seller):
    response = Api(seller).get("/me")

    assert response.status_code == 200
    me = response.json()
    assert {k: me[k] for k in ("username", "email", "email_verified")} == {
        "username": "seller",
        "email": "seller@example.com",
        "email_verified": True,
    }
    assert me["profile"]["role"] == "seller"
    assert me["profile"]["timezone"] == "Asia/Tokyo"


# --- listing conversations ------------------------------------------------------------------------


def test_the_conversation_list_has_the_documented_shape_from_each_side(buyer, seller, conversation):
    send_message(sender=seller, conversation=conversation, body="Yes, it is!")
    send_message(sender=seller, conversation=conversation, body="What colours do you like?")

    buyers_page = Api(buyer).get("/conversations").json()
    sellers_page = Api(seller).get("/conversations").json()

    assert set(buyers_page) == {"items", "next_cursor"}
    assert buyers_page["next_cursor"] is None
    (mine,) = buyers_page["items"]
    assert_conversation_shape(mine)
    assert mine["id"] == conversation.pk
    assert mine["other_user"] == {
        "id": seller.pk,
        "username": "seller",
        "display_name": "Sam Seller",
        "avatar_initials": "SS",
        "is_seller": True,
        "timezone": "Asia/Tokyo",
    }
    assert mine["unread_count"] == 2
    assert mine["last_message"]["body"] == "What colours do you like?"
    assert mine["last_message"]["sender"] == "seller"
    assert mine["last_message"]["conversation_id"] == conversation.pk

    (theirs,) = sellers_page["items"]
    assert theirs["other_user"]["username"] == "buyer"
    assert theirs["other_user"]["is_seller"] is False
    assert theirs["unread_count"] == 0
    assert theirs["last_message"] == mine["last_message"]


def test_the_conversation_list_pages_with_limit_and_cursor(buyer, user_factory):
    expected = []
    for number in range(7):
        user_factory(f"maker{number}", seller=True)
        conversation, _, _ = start_conversation(sender=buyer, recipient_username=f"maker{number}", body="hi")
        expected.insert(0, conversation.pk)

    conversations, pages = walk(Api(buyer), "/conversations", limit=3)

    assert [c["id"] for c in conversations] == expected
    assert pages == 3


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"cursor": "garbage"}, "invalid_cursor"),
        ({"cursor": "eyJhdCI6IDEsICJpZCI6ICJ4In0"}, "invalid_cursor"),
        ({"cursor": "x" * 201}, "invalid_input"),
        ({"limit": 0}, "invalid_limit"),
        ({"limit": 101}, "invalid_limit"),
        ({"limit": "ten"}, "invalid_input"),
    ],
)
def test_the_conversation_list_refuses_bad_paging(buyer, conversation, params, code):
    assert_error(Api(buyer).get("/conversations", params), 422, code)


# --- starting a conversation ------------------------------------------------------------------


def test_starting_a_conversation_answers_201_with_the_conversation(buyer, seller):
    response = Api(buyer).post("/conversations", {"recipient": "seller", "body": "Hello Sam!"})

    assert response.status_code == 201, response.content
    started = response.json()
    assert_conversation_shape(started)
    assert started["other_user"]["username"] == "seller"
    assert started["last_message"]["body"] == "Hello Sam!"
    assert started["last_message"]["sender"] == "buyer"
    assert started["unread_count"] == 0
    sellers_view = Api(seller).get(f"/conversations/{started['id']}").json()
    assert sellers_view["unread_count"] == 1


def test_starting_again_with_the_same_client_id_answers_200_with_the_same_conversation(buyer, seller):
    api, client_id = Api(buyer), str(uuid.uuid4())
    payload = {"recipient": "seller", "body": "Hello Sam!", "client_id": client_id}

    first = api.post("/conversations", payload)
    again = api.post("/conversations", payload)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["last_message"]["id"] == first.json()["last_message"]["id"]
    assert again.json()["last_message"]["client_id"] == client_id
    assert Message.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"recipient": "nobody", "body": "hi"}, 404, "unknown_recipient"),
        ({"recipient": "sel\u0000ler", "body": "hi"}, 404, "unknown_recipient"),
        ({"recipient": "buyer", "body": "note to self"}, 422, "self_conversation"),
        ({"recipient": "seller", "body": ""}, 422, "empty_body"),
        ({"recipient": "seller", "body": "   \n "}, 422, "empty_body"),
        ({"recipient": "seller", "body": "x" * (settings.MESSAGE_MAX_LENGTH + 1)}, 422, "body_too_long"),
        ({"recipient": "seller", "body": "a\u0000b"}, 422, "invalid_body"),
        ({"recipient": "seller"}, 422, "invalid_input"),
        ({"body": "hi"}, 422, "invalid_input"),
        ({"recipient": "seller", "body": 42}, 422, "invalid_input"),
        ({"recipient": ["seller"], "body": "hi"}, 422, "invalid_input"),
        ({"recipient": "seller", "body": "hi", "client_id": "not-a-uuid"}, 422, "invalid_input"),
        ({"recipient": "s" * 151, "body": "hi"}, 422, "invalid_input"),
    ],
)
def test_a_bad_start_is_a_json_4xx_and_stores_nothing(buyer, seller, payload, status, code):
    response = Api(buyer).post("/conversations", payload)

    assert_error(response, status, code)
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()
    assert not Event.objects.exists()


def test_a_validation_error_names_the_field(buyer, seller):
    body = assert_error(Api(buyer).post("/conversations", {"recipient": "seller"}), 422, "invalid_input")

    assert body["detail"].startswith("body: ")


def test_an_unverified_user_cannot_start_a_conversation(user_factory, seller):
    newcomer = user_factory("newcomer", verified=False)

    response = Api(newcomer).post("/conversations", {"recipient": "seller", "body": "hi"})

    assert_error(response, 403, "email_unverified")
    assert not Conversation.objects.exists()


# --- one conversation ----------------------------------------------------------------------------


def test_a_participant_gets_the_conversation(buyer, seller, conversation):
    response = Api(seller).get(f"/conversations/{conversation.pk}")

    assert response.status_code == 200
    got = response.json()
    assert_conversation_shape(got)
    assert got["id"] == conversation.pk
    assert got["other_user"]["username"] == "buyer"
    assert got["unread_count"] == 1


def test_a_stranger_and_an_unknown_id_get_the_same_404(buyer, stranger, conversation):
    api = Api(stranger)
    unknown_id = conversation.pk + 1000

    for suffix, method in [
        ("", "GET"),
        ("/messages", "GET"),
        ("/messages", "POST"),
        ("/read", "POST"),
        ("/typing", "POST"),
    ]:
        payload = json.dumps({"body": "let me in"})
        foreign = api.request(
            method, f"/conversations/{conversation.pk}{suffix}", data=payload, content_type="application/json"
        )
        unknown = api.request(
            method, f"/conversations/{unknown_id}{suffix}", data=payload, content_type="application/json"
        )
        assert_error(foreign, 404, "not_found")
        assert foreign.json() == unknown.json()
        assert foreign.status_code == unknown.status_code

    assert list(Message.objects.values_list("body", flat=True)) == ["Hi, is the logo gig open?"]


@pytest.mark.parametrize("conversation_id", ["0", "9223372036854775808", "9" * 30])
def test_ids_no_row_can_have_are_404_not_500(buyer, conversation, conversation_id):
    response = Api(buyer).get(f"/conversations/{conversation_id}")

    assert_error(response, 404, "not_found")


# --- messages -----------------------------------------------------------------------------------


def test_messages_list_newest_first_and_page_back(buyer, seller, conversation):
    sent = [Message.objects.get(conversation=conversation).pk]
    for number in range(11):
        sender = buyer if number % 2 else seller
        sent.append(send_message(sender=sender, conversation=conversation, body=f"message {number}")[0].pk)

    messages, pages = walk(Api(seller), f"/conversations/{conversation.pk}/messages", limit=5)

    assert [m["id"] for m in messages] == list(reversed(sent))
    assert pages == 3
    for message in messages:
        assert_message_shape(message)
    assert {m["conversation_id"] for m in messages} == {conversation.pk}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"cursor": "abc"}, "invalid_cursor"),
        ({"limit": 0}, "invalid_limit"),
        ({"limit": 201}, "invalid_limit"),
    ],
)
def test_messages_list_refuses_bad_paging(buyer, conversation, params, code):
    assert_error(Api(buyer).get(f"/conversations/{conversation.pk}/messages", params), 422, code)


def test_sending_answers_201_with_the_message(buyer, seller, conversation):
    client_id = str(uuid.uuid4())

    response = Api(seller).post(
        f"/conversations/{conversation.pk}/messages", {"body": "Yes, it's open.", "client_id": client_id}
    )

    assert response.status_code == 201, response.content
    message = response.json()
    assert_message_shape(message)
    assert message["conversation_id"] == conversation.pk
    assert message["sender"] == "seller"
    assert message["body"] == "Yes, it's open."
    assert message["status"] == "visible"
    assert message["client_id"] == client_id
    assert message["edited_at"] is None
    assert Api(buyer).get(f"/conversations/{conversation.pk}").json()["unread_count"] == 1


def test_sending_without_client_id_gets_one_assigned(buyer, conversation):
    response = Api(buyer).post(f"/conversations/{conversation.pk}/messages", {"body": "no id"})

    assert response.status_code == 201
    uuid.UUID(response.json()["client_id"])


def test_a_replayed_client_id_answers_200_with_the_original(buyer, seller, conversation):
    api, client_id = Api(buyer), str(uuid.uuid4())
    path = f"/conversations/{conversation.pk}/messages"

    first = api.post(path, {"body": "only once", "client_id": client_id})
    again = api.post(path, {"body": "only once", "client_id": client_id})

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Message.objects.filter(client_id=client_id).count() == 1
    assert Api(seller).get(f"/conversations/{conversation.pk}").json()["unread_count"] == 2


def test_a_client_id_used_in_another_conversation_is_409(buyer, stranger, conversation):
    other = get_or_create_conversation(user=buyer, other_user=stranger)
    api, client_id = Api(buyer), str(uuid.uuid4())
    api.post(f"/conversations/{conversation.pk}/messages", {"body": "first", "client_id": client_id})

    response = api.post(f"/conversations/{other.pk}/messages", {"body": "second", "client_id": client_id})

    assert_error(response, 409, "client_id_reused")
    assert not Message.objects.filter(conversation=other).exists()


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code"),
    [
        ({"payload": {"body": ""}}, 422, "empty_body"),
        ({"payload": {"body": " \t\n"}}, 422, "empty_body"),
        ({"payload": {"body": "x" * (settings.MESSAGE_MAX_LENGTH + 1)}}, 422, "body_too_long"),
        ({"payload": {"body": "nul \u0000 inside"}}, 422, "invalid_body"),
        ({"payload": {"body": 12}}, 422, "invalid_input"),
        ({"payload": {"body": None}}, 422, "invalid_input"),
        ({"payload": {"body": {"text": "hi"}}}, 422, "invalid_input"),
        ({"payload": {}}, 422, "invalid_input"),
        ({"payload": {"body": "hi", "client_id": "123"}}, 422, "invalid_input"),
        ({"payload": ["hi"]}, 422, "invalid_input"),
        ({"raw": '{"body": "hi"'}, 400, "bad_request"),
        ({"raw": "body=hi"}, 400, "bad_request"),
        ({"raw": "body=hi", "content_type": "application/x-www-form-urlencoded"}, 400, "bad_request"),
        ({"raw": b'{"body": "\xff\xfe not UTF-8"}'}, 400, "bad_request"),
    ],
)
def test_a_bad_send_is_a_json_4xx_and_stores_nothing(
    buyer, seller, conversation, request_kwargs, status, code
):
    before = list(Message.objects.values_list("pk", flat=True)), Event.objects.count()

    response = Api(buyer).post(f"/conversations/{conversation.pk}/messages", **request_kwargs)

    assert_error(response, status, code)
    assert (list(Message.objects.values_list("pk", flat=True)), Event.objects.count()) == before


def test_sending_to_a_closed_account_is_403(buyer, seller, conversation):
    seller.is_active = False
    seller.save(update_fields=["is_active"])

    response = Api(buyer).post(f"/conversations/{conversation.pk}/messages", {"body": "hello?"})

    assert_error(response, 403, "recipient_inactive")
    assert Message.objects.count() == 1


def test_an_unverified_user_cannot_reply(user_factory, buyer):
    newcomer = user_factory("newcomer", seller=True, verified=False)
    conversation, _, _ = start_conversation(sender=buyer, recipient_username="newcomer", body="welcome")

    response = Api(newcomer).post(f"/conversations/{conversation.pk}/messages", {"body": "thanks"})

    assert_error(response, 403, "email_unverified")
    assert Message.objects.count() == 1


# --- reading -------------------------------------------------------------------------------------


def test_marking_read_clears_unread_and_the_other_side_sees_it(buyer, seller, conversation):
    last, _ = send_message(sender=buyer, conversation=conversation, body="second")

    response = Api(seller).post(f"/conversations/{conversation.pk}/read", {})

    assert response.status_code == 200, response.content
    read = response.json()
    assert_conversation_shape(read)
    assert (read["unread_count"], read["last_read_message_id"]) == (0, last.pk)
    buyers_view = Api(buyer).get(f"/conversations/{conversation.pk}").json()
    assert buyers_view["other_last_read_message_id"] == last.pk  # "Seen"


def test_marking_read_with_no_body_reads_everything(buyer, seller, conversation):
    response = Api(seller).request("POST", f"/conversations/{conversation.pk}/read")

    assert response.status_code == 200, response.content
    assert response.json()["unread_count"] == 0


def test_marking_read_up_to_a_message(buyer, seller, conversation):
    first = Message.objects.get(conversation=conversation)
    send_message(sender=buyer, conversation=conversation, body="second")
    send_message(sender=buyer, conversation=conversation, body="third")

    response = Api(seller).post(f"/conversations/{conversation.pk}/read", {"up_to_message_id": first.pk})

    assert response.status_code == 200
    assert (response.json()["unread_count"], response.json()["last_read_message_id"]) == (2, first.pk)
    assert Api(seller).get("/conversations").json()["items"][0]["unread_count"] == 2


@pytest.mark.parametrize(
    ("request_kwargs", "status"),
    [
        ({"raw": "{not json"}, 400),
        ({"payload": {"up_to_message_id": "latest"}}, 422),
        ({"payload": {"up_to_message_id": [1]}}, 422),
    ],
)
def test_a_bad_read_request_is_a_json_4xx_and_changes_nothing(seller, conversation, request_kwargs, status):
    response = Api(seller).post(f"/conversations/{conversation.pk}/read", **request_kwargs)

    assert_error(response, status)
    assert Api(seller).get(f"/conversations/{conversation.pk}").json()["unread_count"] == 1


# --- typing ---------------------------------------------------------------------------------------


def test_typing_answers_204_and_reaches_the_other_person(channel_layer, buyer, seller, conversation):
    sellers_tab = listen(channel_layer, seller)

    response = Api(buyer).post(f"/conversations/{conversation.pk}/typing")

    assert response.status_code == 204
    assert response.content == b""
    assert received(channel_layer, sellers_tab) == [
        {"type": "typing", "conversation_id": conversation.pk, "user": "buyer", "cursor": None}
    ]


def test_a_stranger_typing_reaches_nobody(channel_layer, buyer, seller, stranger, conversation):
    tabs = [listen(channel_layer, buyer), listen(channel_layer, seller)]

    assert_error(Api(stranger).post(f"/conversations/{conversation.pk}/typing"), 404, "not_found")

    assert [received(channel_layer, tab) for tab in tabs] == [[], []]


# --- events --------------------------------------------------------------------------------------


def test_events_since_zero_are_the_whole_log_oldest_first(buyer, seller, conversation):
    reply, _ = send_message(sender=seller, conversation=conversation, body="Sure!")
    Api(buyer).post(f"/conversations/{conversation.pk}/read", {})

    page = Api(buyer).get("/events", {"since": 0}).json()

    assert set(page) == {"items", "next_cursor"}
    assert page["next_cursor"] is None
    events = page["items"]
    # The buyer had no tab open: the reply also rang their bell (a notification of it).
    assert [(e["type"], e["cursor"]) for e in events] == [
        ("message.created", 1),
        ("message.created", 2),
        ("notification.created", 3),
        ("conversation.read", 4),
    ]
    assert [e["message"]["body"] for e in events[:2]] == ["Hi, is the logo gig open?", "Sure!"]
    for event in events[:2]:
        assert_message_shape(event["message"])
        assert event["conversation_id"] == conversation.pk
    assert events[2]["notification"]["kind"] == "new_message"
    assert events[2]["notification"]["url"] == f"/inbox/{conversation.pk}/?message={reply.pk}"
    assert events[3]["last_read_message_id"] == reply.pk
    assert events[3]["reader"] == "buyer"


@pytest.mark.usefixtures("everyone_online")
def test_events_page_with_limit_and_next_cursor(buyer, seller, conversation):
    for number in range(8):
        send_message(sender=buyer, conversation=conversation, body=f"update {number}")
    api = Api(seller)

    events, pages = walk(api, "/events", limit=4, cursor_param="since", start=0)

    assert [e["cursor"] for e in events] == list(range(1, 10))
    assert pages == 3
    assert [e["message"]["body"] for e in events[1:]] == [f"update {n}" for n in range(8)]
    caught_up = api.get("/events", {"since": 9}).json()
    assert caught_up == {"items": [], "next_cursor": None}
    tail = api.get("/events", {"since": 7}).json()
    assert [e["cursor"] for e in tail["items"]] == [8, 9]


def test_events_are_private(buyer, stranger, conversation):
    assert Api(stranger).get("/events", {"since": 0}).json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    "params",
    [{"since": -1}, {"since": "abc"}, {"since": 0, "limit": 0}, {"since": 0, "limit": 501}, {"since": 1.5}],
)
def test_events_refuse_bad_parameters(buyer, conversation, params):
    assert_error(Api(buyer).get("/events", params), 422)


@pytest.mark.usefixtures("everyone_online")
def test_a_pruned_cursor_answers_410(buyer, seller, conversation):
    send_message(sender=buyer, conversation=conversation, body="recent")
    Event.objects.filter(cursor=1).update(created_at=timezone.now() - timedelta(days=90))
    prune_event_log()
    api = Api(seller)

    assert_error(api.get("/events", {"since": 0}), 410, "resync_required")
    assert [e["cursor"] for e in api.get("/events", {"since": 1}).json()["items"]] == [2]


# --- the schema and the rest -------------------------------------------------------------------


def test_the_openapi_schema_lists_every_path():
    response = Client().get(f"{API}/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path, methods in {
        "/api/v1/auth/token": {"post"},
        "/api/v1/me": {"get"},
        "/api/v1/conversations": {"get", "post"},
        "/api/v1/conversations/{conversation_id}": {"get"},
        "/api/v1/conversations/{conversation_id}/messages": {"get", "post"},
        "/api/v1/conversations/{conversation_id}/read": {"post"},
        "/api/v1/conversations/{conversation_id}/typing": {"post"},
        "/api/v1/events": {"get"},
    }.items():
        assert path in paths
        assert set(paths[path]) >= methods, path
