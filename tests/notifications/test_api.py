"""The bell over the API: the list and its pages, reading, preferences, Web Push subscriptions."""

from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils import timezone

from notifications.models import Kind, Notification, Preference, PushSubscription
from notifications.services import notify
from tests.factories import bearer_headers
from tests.helpers import logged_events

pytestmark = pytest.mark.django_db

ENDPOINT = "https://fcm.googleapis.com/fcm/send/abc123"
KEYS = {
    "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
    "auth": "tBHItJI5svbpez7KI4CCXg",
}


def tell(user, n: int = 1, *, kind=Kind.ORDER_DELIVERED) -> list[Notification]:
    return [
        notify(recipient=user, kind=kind, title=f"Update {i}", url="/orders/", dedupe_key=f"test:{kind}:{i}")
        for i in range(n)
    ]


class Api:
    def __init__(self, user=None):
        self.client = Client()
        self.headers = bearer_headers(user) if user is not None else {}

    def get(self, path, **params):
        return self.client.get(f"/api/v1{path}", params, **self.headers)

    def post(self, path, data=None):
        return self.client.post(f"/api/v1{path}", data, content_type="application/json", **self.headers)

    def patch(self, path, data):
        return self.client.patch(f"/api/v1{path}", data, content_type="application/json", **self.headers)

    def delete(self, path, data=None):
        if data is None:  # the endpoint in the query: no body at all
            return self.client.delete(f"/api/v1{path}", **self.headers)
        return self.client.delete(f"/api/v1{path}", data, content_type="application/json", **self.headers)


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/notifications"),
        ("post", "/notifications/1/read"),
        ("post", "/notifications/read-all"),
        ("get", "/notifications/preferences"),
        ("patch", "/notifications/preferences"),
        ("post", "/push-subscriptions"),
        ("delete", "/push-subscriptions"),
    ],
)
def test_everything_needs_a_user(method, path):
    api = Api()
    response = api.patch(path, {}) if method == "patch" else getattr(api, method)(path)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


# --- the list ------------------------------------------------------------------------------------


def test_the_list_is_newest_first_in_pages_with_the_unread_count(buyer, seller):
    mine = tell(buyer, 5)
    tell(seller, 2)  # someone else's never show
    Notification.objects.filter(pk=mine[0].pk).update(read_at=timezone.now())
    api = Api(buyer)

    first = api.get("/notifications", limit=3)
    assert first.status_code == 200
    body = first.json()
    assert [n["id"] for n in body["items"]] == [n.pk for n in reversed(mine[2:])]
    assert body["unread_count"] == 4
    assert body["items"][0] == {
        "id": mine[4].pk,
        "kind": "order_delivered",
        "title": "Update 4",
        "body": "",
        "url": "/orders/",
        "created_at": body["items"][0]["created_at"],
        "read": False,
    }
    assert body["items"][0]["created_at"].endswith("Z")

    rest = api.get("/notifications", limit=3, cursor=body["next_cursor"]).json()
    assert [n["id"] for n in rest["items"]] == [mine[1].pk, mine[0].pk]
    assert rest["items"][1]["read"] is True
    assert rest["next_cursor"] is None


def test_what_the_bell_is_off_for_is_not_listed(buyer):
    Preference.objects.create(user=buyer, kind=Kind.REVIEW_RECEIVED, channel="in_app", enabled=False)
    tell(buyer, 1, kind=Kind.REVIEW_RECEIVED)
    shown = tell(buyer, 1)

    body = Api(buyer).get("/notifications").json()

    assert [n["id"] for n in body["items"]] == [shown[0].pk]
    assert body["unread_count"] == 1


@pytest.mark.parametrize("cursor", ["nonsense", "eyJiZWZvcmUiOiAieCJ9", "x" * 201])
def test_a_cursor_we_did_not_hand_out_is_refused(buyer, cursor):
    response = Api(buyer).get("/notifications", cursor=cursor)
    assert response.status_code == 422
    assert response.json()["error"] in ("invalid_cursor", "invalid_input")


# --- reading -------------------------------------------------------------------------------------


def test_reading_one_says_so_to_every_tab_and_again_changes_nothing(buyer):
    first, _second = tell(buyer, 2)
    api = Api(buyer)

    response = api.post(f"/notifications/{first.pk}/read")

    assert response.status_code == 200
    assert response.json()["notification"]["read"] is True
    assert response.json()["unread_count"] == 1
    first.refresh_from_db()
    read_at = first.read_at
    assert read_at is not None
    assert logged_events(buyer, event_type="notification.read")[-1]["ids"] == [first.pk]

    again = api.post(f"/notifications/{first.pk}/read")
    assert again.status_code == 200
    first.refresh_from_db()
    assert first.read_at == read_at
    assert len(logged_events(buyer, event_type="notification.read")) == 1


@pytest.mark.parametrize("which", ["someone else's", "missing", "past 64 bits"])
def test_someone_elses_notification_is_not_found(which, buyer, seller):
    theirs = tell(seller)[0]
    notification_id = {"someone else's": theirs.pk, "missing": theirs.pk + 1000, "past 64 bits": 2**70}[which]

    response = Api(buyer).post(f"/notifications/{notification_id}/read")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_read_all_reads_only_mine(buyer, seller):
    tell(buyer, 3)
    theirs = tell(seller, 1)[0]
    api = Api(buyer)

    response = api.post("/notifications/read-all")

    assert response.status_code == 200
    assert response.json() == {"marked": 3, "unread_count": 0}
    assert not Notification.objects.filter(recipient=buyer, read_at__isnull=True).exists()
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert api.post("/notifications/read-all").json() == {"marked": 0, "unread_count": 0}


# --- preferences ---------------------------------------------------------------------------------


def test_preferences_show_every_kind_and_channel_with_the_defaults(buyer):
    response = Api(buyer).get("/notifications/preferences")

    assert response.status_code == 200
    matrix = response.json()
    assert set(matrix) == set(Kind.values)
    assert all(set(channels) == {"in_app", "email", "push"} for channels in matrix.values())
    assert matrix["order_delivered"] == {"in_app": True, "email": True, "push": True}
    assert matrix["message_held"]["email"] is False  # default off


def test_changing_preferences_keeps_what_is_not_mentioned(buyer, seller):
    api = Api(buyer)

    response = api.patch(
        "/notifications/preferences", {"new_message": {"email": False}, "message_held": {"email": True}}
    )

    assert response.status_code == 200
    matrix = response.json()
    assert matrix["new_message"] == {"in_app": True, "email": False, "push": True}
    assert matrix["message_held"]["email"] is True
    assert api.get("/notifications/preferences").json() == matrix
    assert Api(seller).get("/notifications/preferences").json()["new_message"]["email"] is True


@pytest.mark.parametrize(
    "changes, code",
    [
        ({"new_message": {"email": False}, "pigeon_post": {"email": False}}, "invalid_kind"),
        ({"new_message": {"email": False, "fax": True}}, "invalid_channel"),
        ({"new_message": {"email": "no"}}, "invalid_input"),
        ({"new_message": False}, "invalid_input"),
        (["new_message"], "invalid_input"),
    ],
)
def test_an_unknown_kind_or_channel_changes_nothing(changes, code, buyer):
    response = Api(buyer).patch("/notifications/preferences", changes)

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == code
    assert body["detail"]
    assert not Preference.objects.filter(user=buyer).exists()


# --- push subscriptions --------------------------------------------------------------------------


def test_a_browser_subscribes_once_and_unsubscribes(buyer):
    api = Api(buyer)
    subscription = {"endpoint": ENDPOINT, "expirationTime": None, "keys": KEYS}

    created = api.post("/push-subscriptions", subscription)
    again = api.post("/push-subscriptions", subscription)

    assert created.status_code == again.status_code == 201
    assert created.json()["endpoint"] == ENDPOINT
    stored = PushSubscription.objects.get()
    assert (stored.user, stored.p256dh, stored.auth) == (buyer, KEYS["p256dh"], KEYS["auth"])

    assert api.delete("/push-subscriptions", {"endpoint": ENDPOINT}).status_code == 204
    assert not PushSubscription.objects.exists()


def test_unsubscribing_by_query_and_never_someone_elses(buyer, seller):
    Api(seller).post("/push-subscriptions", {"endpoint": ENDPOINT, "keys": KEYS})
    mine = ENDPOINT + "-mine"
    api = Api(buyer)
    api.post("/push-subscriptions", {"endpoint": mine, "keys": KEYS})

    assert api.delete(f"/push-subscriptions?{urlencode({'endpoint': ENDPOINT})}").status_code == 204
    assert PushSubscription.objects.filter(user=seller, endpoint=ENDPOINT).exists()
    assert api.delete(f"/push-subscriptions?{urlencode({'endpoint': mine})}").status_code == 204
    assert not PushSubscription.objects.filter(user=buyer).exists()

    missing = api.delete("/push-subscriptions")  # names no subscription
    assert missing.status_code == 404
    assert missing.json()["error"] == "invalid_subscription"


@pytest.mark.parametrize(
    "subscription",
    [
        {"endpoint": "http://push.example.com/abc", "keys": KEYS},
        {"endpoint": "not a url", "keys": KEYS},
        {"endpoint": "https://push.example.com/a\x00b", "keys": KEYS},
        {"endpoint": ENDPOINT, "keys": {"p256dh": KEYS["p256dh"]}},
        {"endpoint": ENDPOINT, "keys": {"p256dh": "", "auth": KEYS["auth"]}},
        {"endpoint": ENDPOINT, "keys": {"p256dh": KEYS["p256dh"], "auth": "é" * 10}},
        {"endpoint": ENDPOINT, "keys": {"p256dh": 5, "auth": KEYS["auth"]}},
        {"endpoint": ENDPOINT},
        {"keys": KEYS},
    ],
    ids=[
        "http",
        "not-url",
        "nul",
        "no-auth",
        "empty-p256dh",
        "non-ascii",
        "number",
        "no-keys",
        "no-endpoint",
    ],
)
def test_a_malformed_subscription_is_refused_and_nothing_stored(subscription, buyer):
    response = Api(buyer).post("/push-subscriptions", subscription)

    assert response.status_code == 422
    assert response.json()["error"] in ("invalid_subscription", "invalid_input")
    assert response.json()["detail"]
    assert not PushSubscription.objects.exists()


def test_the_services_refuse_a_nul_too_for_the_pages_call_them(buyer):
    """PostgreSQL refuses a NUL even in a lookup: refused (or nothing to remove), never a 500."""
    from marketplace.errors import InvalidInput
    from notifications import services

    with pytest.raises(InvalidInput):
        services.add_push_subscription(user=buyer, endpoint=ENDPOINT + "\x00", **KEYS)
    with pytest.raises(InvalidInput):
        services.add_push_subscription(user=buyer, endpoint=ENDPOINT, p256dh="k\x00", auth="a")
    services.remove_push_subscription(user=buyer, endpoint=ENDPOINT + "\x00")
    assert not PushSubscription.objects.exists()
