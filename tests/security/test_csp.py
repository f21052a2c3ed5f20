"""Every response carries a Content-Security-Policy, and the legitimate pages break none of it."""

import json
import logging

import httpx
import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import Client
from django.urls import include, path

from attachments import services as attachment_services
from inbox.services.filing import create_label, file_conversations
from marketplace.urls import urlpatterns as site_urlpatterns
from tests.e2e import conftest as e2e_fixtures
from tests.e2e.support import expect_live, log_in, open_page
from tests.factories import bearer_headers, buyer_opens_conversation

launch_browser = e2e_fixtures.launch_browser  # the browser fixture of tests/e2e


def _boom(request):
    raise RuntimeError("a bug")


def _own_policy(request):
    response = HttpResponse("framed on purpose")
    response["Content-Security-Policy"] = "frame-ancestors 'self'"
    return response


# The site plus a view that fails and one that sets its own policy (ROOT_URLCONF of two tests).
urlpatterns = [
    path("boom/", _boom),
    path("own-policy/", _own_policy),
    path("", include(site_urlpatterns)),
]


def directives(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    parsed = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


def assert_strict_policy(response) -> None:
    policy = directives(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert "'self'" in policy["connect-src"]
    assert not any(
        "unsafe" in source
        for name, sources in policy.items()
        if name != "style-src-attr"
        for source in sources
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    ["/", "/accounts/login/", "/healthz", "/api/v1/openapi.json", "/api/v1/docs", "/admin/login/"],
)
def test_anonymous_pages_and_api_carry_the_policy(client, url):
    response = client.get(url)

    assert response.status_code == 200
    assert_strict_policy(response)


@pytest.mark.django_db
def test_member_pages_carry_the_policy(client, buyer, seller):
    conversation = buyer_opens_conversation(buyer, seller)
    client.force_login(buyer)

    for url in ("/inbox/", f"/inbox/{conversation.pk}/", "/notifications/", "/accounts/profile/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_strict_policy(response)


@pytest.mark.django_db
def test_admin_pages_carry_the_policy(client, staff):
    client.force_login(staff)

    for url in ("/admin/", "/admin/accounts/user/", f"/admin/accounts/user/{staff.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_strict_policy(response)


@pytest.mark.django_db
def test_api_answers_and_api_errors_carry_the_policy(client, buyer):
    refused = client.get("/api/v1/conversations")
    allowed = client.get("/api/v1/conversations", **bearer_headers(buyer))

    assert refused.status_code == 401
    assert refused["Content-Type"].startswith("application/json")
    assert allowed.status_code == 200
    assert_strict_policy(refused)
    assert_strict_policy(allowed)


@pytest.mark.django_db
def test_error_pages_carry_the_policy(client, settings):
    settings.ROOT_URLCONF = __name__
    client.raise_request_exception = False

    missing = client.get("/no-such-page/")
    foreign_host = client.get("/", HTTP_HOST="evil.example")
    failure = client.get("/boom/")

    assert (missing.status_code, foreign_host.status_code, failure.status_code) == (404, 400, 500)
    for response in (missing, foreign_host, failure):
        assert_strict_policy(response)


@pytest.mark.django_db
def test_a_view_that_sets_its_own_policy_keeps_it(client, settings):
    settings.ROOT_URLCONF = __name__

    response = client.get("/own-policy/")

    assert response["Content-Security-Policy"] == "frame-ancestors 'self'"


@pytest.mark.django_db
def test_the_websocket_origin_of_this_host_may_be_connected_to(client):
    plain = directives(client.get("/accounts/login/"))
    secure = directives(client.get("/accounts/login/", secure=True))

    assert {"ws://testserver", "wss://testserver"} <= set(plain["connect-src"])
    assert "wss://testserver" in secure["connect-src"]
    assert "ws://testserver" not in secure["connect-src"]


@pytest.mark.django_db
def test_the_bucket_that_presigned_urls_point_at_is_allowed(client, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "inbox-attachments",
                "endpoint_url": "https://objects.example.net:9000",
                "region_name": "us-east-1",
                "access_key": "test-key",
                "secret_key": "test-secret",
                "signature_version": "s3v4",
            },
        },
    }
    store = attachment_services.blob_store()
    download = store.download_url("attachments/x.png", filename_header="inline", content_type="image/png")
    upload_part = store.sign_part("attachments/x.png", "upload-1", 1)

    policy = directives(client.get("/accounts/login/"))

    for url in (download, upload_part):
        origin = "/".join(url.split("/")[:3])
        assert origin == "https://objects.example.net:9000"
        assert origin in policy["img-src"]  # thumbnails redirect to the bucket
        assert origin in policy["connect-src"]  # browsers upload parts straight to it


@pytest.mark.django_db
def test_aws_bucket_and_configured_extra_origins_are_allowed(client, settings):
    settings.CSP_STORAGE_ORIGINS = ["https://files.example.net"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": "inbox-attachments", "region_name": "eu-west-1"},
        },
    }

    policy = directives(client.get("/accounts/login/"))

    for origin in (
        "https://files.example.net",
        "https://inbox-attachments.s3.amazonaws.com",
        "https://inbox-attachments.s3.eu-west-1.amazonaws.com",
    ):
        assert origin in policy["img-src"]
        assert origin in policy["connect-src"]


def test_violation_reports_are_logged_and_answered_without_csrf_or_session(client, caplog):
    client = client.__class__(enforce_csrf_checks=True)
    report = {
        "csp-report": {
            "document-uri": "https://inbox.example.com/inbox/",
            "violated-directive": "script-src-elem",
            "blocked-uri": "https://evil.example/x.js",
        }
    }

    with caplog.at_level(logging.WARNING, logger="marketplace.csp"):
        response = client.post("/csp-report/", json.dumps(report), content_type="application/csp-report")

    assert response.status_code == 204
    assert "https://evil.example/x.js" in caplog.text
    assert "script-src-elem" in caplog.text
    assert directives(client.get("/accounts/login/"))["report-uri"] == ["/csp-report/"]


def test_violation_reports_are_size_limited(client, caplog):
    padding = "x" * 20_000
    report = {"csp-report": {"blocked-uri": "https://evil.example/" + padding}}

    with caplog.at_level(logging.WARNING, logger="marketplace.csp"):
        response = client.post("/csp-report/", json.dumps(report), content_type="application/csp-report")
        garbage = client.post("/csp-report/", "not json", content_type="application/csp-report")

    assert response.status_code == 413
    assert garbage.status_code == 400
    assert "evil.example" not in caplog.text


# A page's CSP violations, as the page itself sees them (the event fires whether or not the
# browser also prints to the console).
COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.effectiveDirective} blocked ${event.blockedURI} at ${event.sourceFile}:${event.lineNumber}`
  );
});
"""


def _watch(page) -> list[str]:
    console = []
    page.add_init_script(COLLECT_VIOLATIONS)
    page.on(
        "console",
        lambda message: console.append(message.text) if "Content Security Policy" in message.text else None,
    )
    return console


def _violations(page, console: list[str]) -> list[str]:
    page.wait_for_load_state("load")
    # Violation events are queued as tasks: let the ones already raised arrive first.
    return page.evaluate("new Promise(r => setTimeout(r, 100)).then(() => window.__cspViolations)") + console


@pytest.mark.needs_browser
@pytest.mark.django_db(transaction=True)
def test_inbox_conversation_and_admin_pages_raise_no_violations(
    daphne_servers, launch_browser, buyer, seller, staff
):
    conversation = buyer_opens_conversation(buyer, seller, "Could you draw a cat for my shop?")
    # A label: its colour is a style attribute, which the policy must let through.
    label = create_label(user=buyer, name="Urgent", color="#c026d3")
    file_conversations(user=buyer, conversation_ids=[conversation.pk], action="add_label", label=label)
    staff_session = Client()
    staff_session.force_login(staff)  # the admin page is what matters here, not a second login form
    server = daphne_servers.start()
    # Static files too (daphne serves them here, through WhiteNoise).
    stylesheet = httpx.get(f"{server}/static/css/app.css")
    assert stylesheet.status_code == 200
    assert_strict_policy(stylesheet)
    browser = launch_browser()

    buyer_page = open_page(browser, server)
    buyer_console = _watch(buyer_page)
    log_in(buyer_page, "buyer")  # lands on /inbox/
    expect_live(buyer_page)
    assert (
        buyer_page.locator(".label-chip", has_text="Urgent").first.evaluate(
            "chip => getComputedStyle(chip).getPropertyValue('--label-color').trim()"
        )
        == "#c026d3"
    )
    assert _violations(buyer_page, buyer_console) == []

    buyer_page.goto(f"/inbox/{conversation.pk}/")
    expect_live(buyer_page)
    assert buyer_page.locator("#thread li.message .bubble").first.inner_text() == (
        "Could you draw a cat for my shop?"
    )
    assert _violations(buyer_page, buyer_console) == []
    assert buyer_page.js_errors == []

    staff_page = open_page(browser, server)
    staff_console = _watch(staff_page)
    cookie = staff_session.cookies[settings.SESSION_COOKIE_NAME]
    staff_page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": server}])
    staff_page.goto("/admin/accounts/user/")
    staff_page.get_by_role("checkbox", name="Select all objects on this page for an action").check()
    assert staff_page.locator(".action-counter").inner_text().startswith("3 of 3")  # admin JS ran
    assert _violations(staff_page, staff_console) == []
    assert staff_page.js_errors == []
