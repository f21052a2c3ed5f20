"""The notification pages through Django's test client: the bell in the header and its dropdown,
the full list, mark read, settings, Web Push subscriptions, the service worker, unsubscribe."""

import json
import re
from html import unescape

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from notifications import selectors, services
from notifications.emails import unsubscribe_token
from notifications.models import Channel, Kind, Notification, Preference, PushSubscription
from tests.helpers import logged_events

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
JSON = {"HTTP_ACCEPT": "application/json"}
HTMX = {"HTTP_HX_REQUEST": "true"}
PUSH_ENDPOINT = "https://fcm.googleapis.com/fcm/send/abc123"


# --- helpers -------------------------------------------------------------------------------------


def browser(user=None, **options) -> Client:
    client = Client(**options)
    if user is not None:
        client.force_login(user)
    return client


def html_of(response, status: int = 200) -> str:
    assert response.status_code == status, response.content[:800]
    return response.content.decode()


def tell(user, number: int, *, title: str = "", body: str = "", url: str = "/orders/") -> Notification:
    return services.notify(
        recipient=user,
        kind=Kind.ORDER_UPDATED,
        title=title or f"Update {number}",
        body=body,
        url=url,
        dedupe_key=f"test:{number}",
    )


def bell_count(html: str) -> tuple[str, bool]:
    """(the badge's text, whether it is hidden)."""
    match = re.search(r'<span class="bell-count" id="notification-count"([^>]*)>([^<]*)</span>', html)
    assert match, "no bell in the header"
    return match.group(2), re.search(r"\shidden(\s|$)", match.group(1)) is not None


def shown_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'data-notification-id="(\d+)"', html)]


def flashes(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


# --- the bell --------------------------------------------------------------------------------------


def test_the_header_shows_the_unread_count_and_hides_the_badge_at_zero(buyer):
    client = browser(buyer)
    assert bell_count(html_of(client.get("/orders/"))) == ("0", True)

    for number in range(3):
        tell(buyer, number)
    html = html_of(client.get("/orders/"))
    assert bell_count(html) == ("3", False)
    assert 'aria-label="Notifications, 3 unread"' in html
    assert "notifications/bell.js" in html

    services.mark_all_read(user=buyer)
    assert bell_count(html_of(client.get("/"))) == ("0", True)


def test_visitors_get_no_bell(buyer):
    html = html_of(browser().get("/"))
    assert "notification-bell" not in html
    assert "bell.js" not in html


def test_the_bell_costs_one_query_per_page(buyer, django_assert_num_queries):
    from django.template import Context, Template
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = buyer
    template = Template("{% load notification_tags %}{% notification_bell %}")
    with django_assert_num_queries(1):
        template.render(Context({"user": buyer, "request": request, "csrf_token": "x"}))


def test_the_dropdown_lists_the_latest_eight_newest_first_escaped(buyer, seller):
    made = [tell(buyer, number) for number in range(9)]
    services.mark_read(user=buyer, notification_id=made[7].pk)
    newest = tell(buyer, 99, title=XSS, body=XSS, url="/u/seller/")
    tell(seller, 100, title="Not for the buyer")

    html = html_of(browser(buyer).get("/notifications/bell/"))

    assert shown_ids(html) == [newest.pk, *[n.pk for n in reversed(made)]][:8]
    assert 'data-unread-count="9"' in html
    assert XSS not in html
    assert html.count(XSS_ESCAPED) == 2  # title and body
    assert "Not for the buyer" not in html
    assert f'action="/notifications/{newest.pk}/open/"' in html
    assert "csrfmiddlewaretoken" in html
    # Unread ones are marked; the one read is not.
    assert re.search(rf'class="bell-item unread" data-notification-id="{newest.pk}"', html)
    assert re.search(rf'class="bell-item" data-notification-id="{made[7].pk}"', html)
    assert "just now" in html


def test_the_dropdown_when_there_is_nothing(buyer):
    html = html_of(browser(buyer).get("/notifications/bell/"))
    assert "No notifications yet." in html
    assert 'data-unread-count="0"' in html


# --- the full list -------------------------------------------------------------------------------


def test_the_list_is_newest_first_in_pages_with_load_more(buyer):
    made = [tell(buyer, number) for number in range(25)]
    newest_first = [n.pk for n in reversed(made)]
    client = browser(buyer)

    first = html_of(client.get("/notifications/"))
    assert shown_ids(first) == newest_first[:20]
    cursor = re.search(r'href="/notifications/\?cursor=([^"]+)"[^>]*data-load-more', first).group(1)
    assert "Mark all as read" in first
    assert "notifications/list.js" in first

    # Without script: the link opens the next page.
    second = html_of(client.get("/notifications/", {"cursor": cursor}))
    assert shown_ids(second) == newest_first[20:]
    assert "data-load-more" not in second
    assert "Back to the newest" in second
    assert "<html" in second

    # The page's script asks for the rows only.
    rows = client.get("/notifications/", {"cursor": cursor}, **HTMX)
    assert shown_ids(html_of(rows)) == newest_first[20:]
    assert "<html" not in rows.content.decode()
    assert "HX-Request" in rows["Vary"]


def test_a_cursor_not_from_the_server_shows_the_first_page_and_says_so(buyer):
    tell(buyer, 1)
    html = html_of(browser(buyer).get("/notifications/", {"cursor": "nonsense!"}), 400)
    assert "The cursor is not one this server handed out." in html
    assert len(shown_ids(html)) == 1


def test_the_list_escapes_user_text_and_marks_unread(buyer):
    first = tell(buyer, 1, title=XSS, body=XSS)
    second = tell(buyer, 2)
    services.mark_read(user=buyer, notification_id=second.pk)
    html = html_of(browser(buyer).get("/notifications/"))
    assert XSS not in html
    assert XSS_ESCAPED in html
    assert f'action="/notifications/{first.pk}/read/"' in html  # "Mark read" on the unread one
    assert f'action="/notifications/{second.pk}/read/"' not in html


def test_pages_need_a_login(buyer):
    client = browser()
    for path in ("/notifications/", "/notifications/bell/", "/notifications/settings/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


# --- reading -------------------------------------------------------------------------------------


def test_opening_a_notification_marks_it_read_and_goes_to_its_url(buyer):
    notification = tell(buyer, 1, url="/u/seller/")
    tell(buyer, 2)
    client = browser(buyer)

    assert client.get(f"/notifications/{notification.pk}/open/").status_code == 405
    response = client.post(f"/notifications/{notification.pk}/open/")

    assert response.status_code == 302
    assert response["Location"] == "/u/seller/"
    notification.refresh_from_db()
    assert notification.read_at is not None
    event = logged_events(buyer, event_type="notification.read")[-1]
    assert (event["ids"], event["unread_count"]) == ([notification.pk], 1)
    assert bell_count(html_of(client.get("/orders/"))) == ("1", False)


def test_a_notification_pointing_off_site_opens_the_list_instead(buyer):
    notification = tell(buyer, 1, url="https://evil.example/phish")
    response = browser(buyer).post(f"/notifications/{notification.pk}/open/")
    assert response["Location"] == "/notifications/"


def test_mark_one_read_then_all(buyer):
    made = [tell(buyer, number) for number in range(3)]
    client = browser(buyer)

    response = client.post(f"/notifications/{made[0].pk}/read/", {"next": "/notifications/?cursor=x"})
    assert (response.status_code, response["Location"]) == (302, "/notifications/?cursor=x")
    answer = client.post(f"/notifications/{made[1].pk}/read/", **JSON)
    assert answer.json() == {"detail": "Marked as read.", "unread_count": 1}
    assert selectors.unread_count(user=buyer) == 1
    # A next pointing elsewhere is ignored.
    response = client.post(f"/notifications/{made[0].pk}/read/", {"next": "https://evil.example/"})
    assert response["Location"] == "/notifications/"

    response = client.post("/notifications/read-all/", {"next": "/orders/"})
    assert (response.status_code, response["Location"]) == (302, "/orders/")
    assert flashes(response) == ["All notifications are read."]
    assert selectors.unread_count(user=buyer) == 0
    assert logged_events(buyer, event_type="notification.read")[-1]["ids"] == [made[2].pk]
    assert client.post("/notifications/read-all/", **JSON).json() == {
        "detail": "Nothing was unread.",
        "unread_count": 0,
    }


def test_someone_elses_notification_is_not_found_everywhere(buyer, seller):
    theirs = tell(seller, 1)
    client = browser(buyer)
    for path in (
        f"/notifications/{theirs.pk}/open/",
        f"/notifications/{theirs.pk}/read/",
        "/notifications/99999999/open/",
        f"/notifications/{2**63}/read/",
        f"/notifications/{10**30}/open/",
    ):
        assert client.post(path).status_code == 404, path
        assert client.post(path, **JSON).status_code == 404, path
    theirs.refresh_from_db()
    assert theirs.read_at is None
    # Nor does it show anywhere of the buyer's.
    assert theirs.pk not in shown_ids(html_of(client.get("/notifications/")))
    assert theirs.pk not in shown_ids(html_of(client.get("/notifications/bell/")))


def test_every_post_needs_the_csrf_token(buyer):
    notification = tell(buyer, 1)
    client = browser(buyer, enforce_csrf_checks=True)
    for path, data in (
        (f"/notifications/{notification.pk}/open/", {}),
        (f"/notifications/{notification.pk}/read/", {}),
        ("/notifications/read-all/", {}),
        ("/notifications/settings/", {"order_updated.email": "0"}),
        ("/notifications/push/subscribe/", {"endpoint": PUSH_ENDPOINT, "p256dh": "k", "auth": "a"}),
        ("/notifications/push/unsubscribe/", {"endpoint": PUSH_ENDPOINT}),
    ):
        assert client.post(path, data).status_code == 403, path
    assert selectors.unread_count(user=buyer) == 1
    assert not Preference.objects.exists()
    assert not PushSubscription.objects.exists()


# --- settings ------------------------------------------------------------------------------------


def settings_form(html: str) -> dict:
    """What the settings form posts as it is shown: "0" for every cell, "1" too when ticked."""
    fields = {}
    for name in re.findall(r'<input type="hidden" name="([a-z_]+\.[a-z_]+)" value="0">', html):
        fields[name] = ["0"]
    for name in re.findall(r'<input type="checkbox" name="([a-z_]+\.[a-z_]+)" value="1"[^>]* checked', html):
        fields[name].append("1")
    return fields


def test_the_settings_page_shows_every_kind_and_channel_with_the_defaults(buyer):
    html = html_of(browser(buyer).get("/notifications/settings/"))
    rows = re.findall(r'<th scope="row" id="kind-([a-z_]+)">([^<]+)</th>', html)
    assert [(kind, unescape(label)) for kind, label in rows] == [(k, str(label)) for k, label in Kind.choices]
    for label in Channel.labels:
        assert str(label) in html
    fields = settings_form(html)
    assert len(fields) == len(Kind.values) * len(Channel.values)
    assert fields["message_held.email"] == ["0"]  # off by default
    assert fields["order_delivered.email"] == ["0", "1"]


def test_settings_save_in_one_post_and_say_so(buyer):
    client = browser(buyer)
    fields = settings_form(html_of(client.get("/notifications/settings/")))
    fields["order_delivered.email"] = ["0"]  # unticked
    fields["message_held.email"] = ["0", "1"]  # ticked
    fields["warning.push"] = ["0"]

    response = client.post("/notifications/settings/", fields)

    assert (response.status_code, response["Location"]) == (302, "/notifications/settings/")
    matrix = selectors.preferences(user=buyer)
    assert matrix["order_delivered"]["email"] is False
    assert matrix["message_held"]["email"] is True
    assert matrix["warning"]["push"] is False
    assert matrix["order_delivered"]["in_app"] is True
    page = client.get(response["Location"])
    assert "Your notification settings are saved." in html_of(page)
    assert settings_form(page.content.decode())["order_delivered.email"] == ["0"]


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("made_up.email", "1", "Unknown kind 'made_up'"),
        ("order_delivered.pigeon", "1", "Unknown channel 'pigeon'"),
        ("order_delivered", "1", "Unknown setting 'order_delivered'"),
        ("order_delivered.email", "yes", "Unknown setting 'order_delivered.email'"),
    ],
)
def test_bad_settings_change_nothing_and_say_why(buyer, field, value, said):
    client = browser(buyer)
    fields = settings_form(html_of(client.get("/notifications/settings/")))
    fields["order_delivered.in_app"] = ["0"]  # a good change beside the bad one
    fields[field] = [value]

    html = html_of(client.post("/notifications/settings/", fields), 400)

    assert "Nothing was changed" in html
    assert said in unescape(html)
    assert not Preference.objects.filter(user=buyer).exists()
    assert settings_form(html)["order_delivered.in_app"] == ["0", "1"]  # shown as it still is


def test_the_push_column_offers_the_button_only_when_push_is_configured(buyer, settings):
    client = browser(buyer)
    settings.WEBPUSH_VAPID_PUBLIC_KEY = ""
    html = html_of(client.get("/notifications/settings/"))
    assert "Push is not configured on this server." in html
    assert "Enable push in this browser" not in html
    assert "push.js" not in html

    settings.WEBPUSH_VAPID_PUBLIC_KEY = "BPublicKey_-123"
    html = html_of(client.get("/notifications/settings/"))
    assert "Push is not configured" not in html
    assert "Enable push in this browser" in html
    assert 'data-vapid-key="BPublicKey_-123"' in html
    assert 'data-worker-url="/notifications/sw.js"' in html
    assert "notifications/push.js" in html


# --- Web Push ------------------------------------------------------------------------------------


def test_a_browser_subscription_is_stored(buyer):
    subscription = {
        "endpoint": PUSH_ENDPOINT,
        "expirationTime": None,
        "keys": {"p256dh": "BKey", "auth": "sec"},
    }
    response = browser(buyer).post(
        "/notifications/push/subscribe/", json.dumps(subscription), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["detail"] == "Push notifications are on in this browser."
    stored = PushSubscription.objects.get()
    assert (stored.user, stored.endpoint, stored.p256dh, stored.auth) == (buyer, PUSH_ENDPOINT, "BKey", "sec")

    response = browser(buyer).post(
        "/notifications/push/unsubscribe/",
        json.dumps({"endpoint": PUSH_ENDPOINT}),
        content_type="application/json",
    )
    assert response.status_code == 200
    assert not PushSubscription.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"endpoint": "http://push.example/insecure", "keys": {"p256dh": "k", "auth": "a"}},
        {"endpoint": "not a url", "keys": {"p256dh": "k", "auth": "a"}},
        {"endpoint": "javascript:alert(1)", "keys": {"p256dh": "k", "auth": "a"}},
        {"endpoint": PUSH_ENDPOINT, "keys": {"p256dh": "", "auth": "a"}},
        {"endpoint": PUSH_ENDPOINT},
        {"endpoint": ["https://push.example/"], "keys": {"p256dh": "k", "auth": "a"}},
        ["not", "an", "object"],
        "{broken json",
    ],
)
def test_a_malformed_subscription_is_refused_and_nothing_stored(buyer, body):
    data = body if isinstance(body, str) else json.dumps(body)
    response = browser(buyer).post("/notifications/push/subscribe/", data, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_subscription"
    assert response.json()["detail"]
    assert not PushSubscription.objects.exists()


def test_a_subscription_as_form_fields_works_too(buyer):
    client = browser(buyer)
    fields = {"endpoint": PUSH_ENDPOINT, "p256dh": "BKey", "auth": "sec"}
    assert client.post("/notifications/push/subscribe/", fields).status_code == 201
    assert client.post("/notifications/push/subscribe/", {**fields, "endpoint": "ftp://x"}).status_code == 400
    assert PushSubscription.objects.count() == 1


def test_the_service_worker_is_served_for_the_whole_site():
    response = Client().get("/notifications/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert response["Service-Worker-Allowed"] == "/"
    source = response.content.decode()
    assert 'addEventListener("push"' in source
    assert 'addEventListener("notificationclick"' in source


# --- unsubscribe ---------------------------------------------------------------------------------


def test_the_unsubscribe_link_asks_then_stops_that_kind_of_email(buyer):
    token = unsubscribe_token(user=buyer, kind=Kind.ORDER_DELIVERED)
    client = Client(enforce_csrf_checks=True)  # no login: the token says who

    page = client.get(f"/notifications/unsubscribe/{token}/")
    html = html_of(page)
    assert "Stop these emails?" in html
    assert "Order delivered" in html
    assert selectors.preferences(user=buyer)["order_delivered"]["email"] is True

    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    assert client.post(f"/notifications/unsubscribe/{token}/").status_code == 403
    html = html_of(client.post(f"/notifications/unsubscribe/{token}/", {"csrfmiddlewaretoken": csrf}))
    assert "Unsubscribed" in html
    matrix = selectors.preferences(user=buyer)
    assert matrix["order_delivered"]["email"] is False
    assert matrix["order_delivered"]["in_app"] is True
    assert matrix["order_completed"]["email"] is True


def test_a_tampered_unsubscribe_link_does_nothing(buyer):
    token = unsubscribe_token(user=buyer, kind=Kind.ORDER_DELIVERED)
    html = html_of(Client().post(f"/notifications/unsubscribe/{token}x/"), 400)
    assert "This link does not work" in html
    assert not Preference.objects.exists()
