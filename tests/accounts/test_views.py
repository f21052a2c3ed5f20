"""Account pages as a person uses them: sign up, log in and out, confirm the address, settings,
and the public profile and gig pages."""

import re
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY

from inbox.models import Conversation, Message
from marketplace.accounts.models import Profile, User
from marketplace.accounts.services import email_verification_token
from orders.services import create_gig
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db

XSS = "<img src=x onerror=alert(1)>"
XSS_ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
SIGNUP = {
    "username": "newbie",
    "email": "newbie@example.com",
    "display_name": "New Bie",
    "role": "seller",
    "password": "plum-orchard-sunset-42",
}


class FormParser(HTMLParser):
    """The forms of a page: each as {"action", "method", "fields": {name: value}}."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(
                {"action": attrs.get("action", ""), "method": attrs.get("method", "get"), "fields": {}}
            )
        elif self.forms and tag == "input" and attrs.get("name"):
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value") or ""
        elif self.forms and tag == "textarea" and attrs.get("name"):
            self._textarea = attrs["name"]
            self.forms[-1]["fields"][self._textarea] = ""

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.forms[-1]["fields"][self._textarea] += data


def forms_of(response) -> list[dict]:
    parser = FormParser()
    parser.feed(response.content.decode())
    return parser.forms


def form_posting_to(response, action: str) -> dict:
    matches = [form for form in forms_of(response) if form["action"] == action]
    assert matches, f"no form posting to {action} on the page"
    return matches[0]


def logged_in_user_id(client):
    return client.session.get(SESSION_KEY)


def verification_link(email) -> str:
    links = re.findall(r"https?://\S+/accounts/verify/\S+/", email.body)
    assert len(links) == 1, email.body
    assert links[0].startswith(settings.SITE_URL)
    return links[0].removeprefix(settings.SITE_URL)


# --- sign up


def test_sign_up_creates_the_user_logs_in_and_sends_a_verification_link(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/accounts/signup/", SIGNUP)

    assert response.status_code == 302
    assert response["Location"] == "/inbox/"
    user = User.objects.get(username="newbie")
    assert user.email == "newbie@example.com"
    assert user.profile.display_name == "New Bie"
    assert user.profile.role == Profile.Role.SELLER
    assert user.password.startswith("argon2")
    assert not user.is_email_verified
    assert str(logged_in_user_id(client)) == str(user.pk)

    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert email.to == ["newbie@example.com"]
    link = verification_link(email)

    followed = client.get(link, follow=True)

    assert followed.status_code == 200
    assert followed.redirect_chain[0] == ("/inbox/", 302)
    assert "newbie@example.com is confirmed" in followed.content.decode()
    assert User.objects.get(pk=user.pk).is_email_verified


def test_the_verification_link_works_for_someone_who_is_logged_out(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/accounts/signup/", SIGNUP)
    client.post("/accounts/logout/")

    response = client.get(verification_link(mailoutbox[0]))

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert User.objects.get(username="newbie").is_email_verified


def test_sign_up_with_a_taken_username_shows_an_error_and_keeps_the_form(
    client, buyer, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/accounts/signup/", {**SIGNUP, "username": "BUYER"})

    assert response.status_code == 422
    page = response.content.decode()
    assert "is taken" in page
    fields = form_posting_to(response, "")["fields"]
    assert fields["username"] == "BUYER"
    assert fields["email"] == "newbie@example.com"
    assert fields["display_name"] == "New Bie"
    assert "password" not in fields or fields["password"] == ""
    assert User.objects.filter(username__iexact="buyer").count() == 1
    assert logged_in_user_id(client) is None
    assert mailoutbox == []


def test_sign_up_with_a_weak_password_shows_the_error_on_the_password(client):
    response = client.post("/accounts/signup/", {**SIGNUP, "password": "password"})

    assert response.status_code == 422
    assert "too common" in response.context["form"].errors["password"][0]
    assert not User.objects.filter(username="newbie").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("username", "bad name!"), ("email", "not-an-email"), ("role", "admin"), ("password", "")],
)
def test_sign_up_with_invalid_fields_creates_nobody(client, field, value):
    response = client.post("/accounts/signup/", {**SIGNUP, field: value})

    assert response.status_code == 422
    assert field in response.context["form"].errors
    assert User.objects.count() == 0


def test_the_sign_up_page_renders_for_visitors_and_sends_members_to_their_inbox(client, buyer):
    assert client.get("/accounts/signup/").status_code == 200

    client.force_login(buyer)
    response = client.get("/accounts/signup/")
    assert response.status_code == 302
    assert response["Location"] == "/inbox/"


# --- log in, log out


def test_log_in_with_the_right_password(client, buyer):
    response = client.post("/accounts/login/", {"username": "buyer", "password": TEST_PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/inbox/"
    assert str(logged_in_user_id(client)) == str(buyer.pk)


def test_log_in_honours_next(client, buyer):
    response = client.post(
        "/accounts/login/?next=/accounts/profile/",
        {"username": "buyer", "password": TEST_PASSWORD, "next": "/accounts/profile/"},
    )

    assert response["Location"] == "/accounts/profile/"


def test_log_in_with_a_wrong_password_shows_an_error(client, buyer):
    response = client.post("/accounts/login/", {"username": "buyer", "password": "wrong-password"})

    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert "correct username and password" in response.content.decode()
    assert logged_in_user_id(client) is None


def test_log_out_is_a_post(client, buyer):
    client.force_login(buyer)

    assert client.get("/accounts/logout/").status_code == 405
    assert logged_in_user_id(client) is not None

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert logged_in_user_id(client) is None
    assert client.get("/inbox/")["Location"].startswith("/accounts/login/")


def test_every_page_offers_a_log_out_button_to_a_member(client, buyer):
    client.force_login(buyer)

    form = form_posting_to(client.get("/"), "/accounts/logout/")

    assert form["method"] == "post"
    assert "csrfmiddlewaretoken" in form["fields"]


# --- the verify link page


def test_a_good_verification_link_confirms_the_address(client, user_factory):
    user = user_factory("pending", verified=False)
    client.force_login(user)

    response = client.get(f"/accounts/verify/{email_verification_token(user=user)}/", follow=True)

    assert response.redirect_chain == [("/inbox/", 302)]
    assert "pending@example.com is confirmed" in response.content.decode()
    assert User.objects.get(pk=user.pk).is_email_verified


def test_a_bad_verification_link_says_so(client, user_factory):
    user = user_factory("pending", verified=False)
    client.force_login(user)
    token = email_verification_token(user=user)

    response = client.get(f"/accounts/verify/{token[:-2]}xx/")

    assert response.status_code == 400
    page = response.content.decode()
    assert "We could not confirm this address" in page
    assert "This verification link is not valid." in page
    assert form_posting_to(response, "/accounts/verify/resend/")
    assert not User.objects.get(pk=user.pk).is_email_verified


def test_a_bad_verification_link_asks_a_visitor_to_log_in(client):
    response = client.get("/accounts/verify/garbage/")

    assert response.status_code == 400
    assert 'href="/accounts/login/"' in response.content.decode()


# --- resend verification


def test_resend_verification_emails_a_fresh_link_that_works(
    client, user_factory, mailoutbox, django_capture_on_commit_callbacks
):
    user = user_factory("pending", verified=False)
    client.force_login(user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/accounts/verify/resend/", {"next": "/"})

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["pending@example.com"]
    assert "We sent a new confirmation link" in client.get("/").content.decode()

    client.get(verification_link(mailoutbox[0]))
    assert User.objects.get(pk=user.pk).is_email_verified


def test_resend_verification_to_a_verified_user_sends_nothing(
    client, buyer, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(buyer)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/accounts/verify/resend/", follow=True)

    assert mailoutbox == []
    assert "already confirmed" in response.content.decode()


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/", "//evil.example/", "javascript:alert(1)", "admin:index", ""]
)
def test_resend_verification_never_redirects_off_the_site(client, buyer, next_url):
    client.force_login(buyer)

    response = client.post("/accounts/verify/resend/", {"next": next_url})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/profile/"


def test_resend_verification_needs_a_login_and_a_post(client, user_factory, mailoutbox):
    response = client.post("/accounts/verify/resend/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")

    client.force_login(user_factory("pending", verified=False))
    assert client.get("/accounts/verify/resend/").status_code == 405
    assert mailoutbox == []


# --- profile settings


def _settings_data(**overrides):
    data = {
        "display_name": "Bella B.",
        "headline": "I buy bread",
        "role": "seller",
        "timezone": "America/New_York",
        "languages": " French , English,, ",
    }
    data.update(overrides)
    return data


def test_the_settings_page_shows_the_current_profile(client, buyer):
    client.force_login(buyer)

    response = client.get("/accounts/profile/")

    assert response.status_code == 200
    fields = form_posting_to(response, "")["fields"]
    assert fields["display_name"] == "Bella Buyer"
    assert fields["languages"] == "English"
    assert '<option value="Europe/Paris" selected>' in response.content.decode()


def test_the_settings_page_saves(client, buyer):
    client.force_login(buyer)

    response = client.post("/accounts/profile/", _settings_data(), follow=True)

    assert response.redirect_chain == [("/accounts/profile/", 302)]
    assert "Profile saved." in response.content.decode()
    profile = Profile.objects.get(user=buyer)
    assert profile.display_name == "Bella B."
    assert profile.headline == "I buy bread"
    assert profile.role == Profile.Role.SELLER
    assert profile.timezone == "America/New_York"
    assert profile.languages == ["French", "English"]


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "Select a valid choice"),
        ({"display_name": "   "}, "This field is required"),
        ({"display_name": "x" * 81}, "at most 80 characters"),
        ({"role": "admin"}, "Select a valid choice"),
    ],
)
def test_the_settings_page_shows_errors_and_saves_nothing(client, buyer, overrides, error):
    client.force_login(buyer)

    response = client.post("/accounts/profile/", _settings_data(**overrides))

    assert response.status_code == 422
    assert error in response.content.decode()
    profile = Profile.objects.get(user=buyer)
    assert profile.display_name == "Bella Buyer"
    assert profile.timezone == "Europe/Paris"
    assert profile.role == Profile.Role.BUYER


def test_the_settings_page_needs_a_login(client):
    response = client.get("/accounts/profile/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/accounts/profile/"


# --- the unverified banner


def test_an_unverified_user_sees_the_banner_with_a_resend_button(client, user_factory):
    client.force_login(user_factory("pending", verified=False))

    response = client.get("/")

    assert "Confirm your email address to start messaging." in response.content.decode()
    assert form_posting_to(response, "/accounts/verify/resend/")["fields"]["next"] == "/"


def test_a_verified_user_and_a_visitor_see_no_banner(client, buyer):
    assert "Confirm your email address" not in client.get("/").content.decode()

    client.force_login(buyer)
    assert "Confirm your email address" not in client.get("/").content.decode()


# --- public profile and gig pages


@pytest.fixture
def gig(seller):
    return create_gig(
        seller=seller,
        title="I will design your logo",
        description="Three concepts.\nVector files.",
        price=120,
        delivery_days=4,
    )


def test_a_buyer_sees_a_contact_form_on_a_sellers_profile(client, buyer, seller):
    client.force_login(buyer)

    response = client.get("/u/seller/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Sam Seller" in page
    assert "Asia/Tokyo" in page
    form = form_posting_to(response, "/inbox/new/")
    assert form["method"] == "post"
    assert form["fields"]["to"] == "seller"
    assert "Contact Sam Seller" in page


def test_the_contact_form_on_a_profile_starts_a_conversation(client, buyer, seller):
    client.force_login(buyer)
    form = form_posting_to(client.get("/u/seller/"), "/inbox/new/")

    response = client.post("/inbox/new/", {**form["fields"], "body": "Hello Sam, are you free in May?"})

    conversation = Conversation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/inbox/{conversation.pk}/"
    message = Message.objects.get()
    assert message.sender == buyer
    assert message.body == "Hello Sam, are you free in May?"


def test_a_visitor_is_asked_to_log_in_to_contact_a_seller(client, seller):
    response = client.get("/u/seller/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Log in to contact Sam Seller" in page
    assert 'href="/accounts/login/?next=/u/seller/"' in page
    assert not [form for form in forms_of(response) if form["action"] == "/inbox/new/"]


def test_a_seller_gets_no_contact_form_on_their_own_profile(client, seller):
    client.force_login(seller)

    response = client.get("/u/seller/")

    assert response.status_code == 200
    assert not [form for form in forms_of(response) if form["action"] == "/inbox/new/"]


def test_the_profile_of_an_unknown_or_deactivated_user_is_not_found(client, seller):
    assert client.get("/u/nobody/").status_code == 404
    User.objects.filter(pk=seller.pk).update(is_active=False)
    assert client.get("/u/seller/").status_code == 404


def test_a_sellers_profile_lists_their_gigs(client, gig):
    response = client.get("/u/seller/")

    assert "I will design your logo" in response.content.decode()
    assert f'href="/gigs/{gig.pk}/"' in response.content.decode()


def test_a_buyer_sees_the_gig_with_a_prefilled_contact_form(client, buyer, gig):
    client.force_login(buyer)

    response = client.get(f"/gigs/{gig.pk}/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "I will design your logo" in page
    assert "$120.00" in page
    form = form_posting_to(response, "/inbox/new/")
    assert form["fields"]["to"] == "seller"
    assert form["fields"]["body"] == "Hi Sam Seller, I'm interested in “I will design your logo”. "


def test_an_unknown_or_inactive_gig_is_not_found(client, gig):
    assert client.get("/gigs/999999/").status_code == 404
    type(gig).objects.filter(pk=gig.pk).update(is_active=False)
    assert client.get(f"/gigs/{gig.pk}/").status_code == 404


def test_user_text_is_escaped_on_the_profile_page(client, buyer, seller):
    Profile.objects.filter(user=seller).update(display_name=XSS, headline=XSS, languages=[XSS])
    client.force_login(buyer)

    response = client.get("/u/seller/")

    page = response.content.decode()
    assert XSS not in page
    assert XSS_ESCAPED in page
    assert "onerror=alert(1)>" not in page


def test_user_text_is_escaped_on_the_gig_page(client, buyer, seller):
    Profile.objects.filter(user=seller).update(display_name=XSS)
    gig = create_gig(seller=seller, title=XSS, description=f"Line one\n{XSS}", price=50, delivery_days=2)
    client.force_login(buyer)

    response = client.get(f"/gigs/{gig.pk}/")

    page = response.content.decode()
    assert XSS not in page
    assert XSS_ESCAPED in page
    assert form_posting_to(response, "/inbox/new/")["fields"]["body"].startswith(f"Hi {XSS}, ")


def test_a_display_name_is_escaped_in_the_header_of_every_page(client, user_factory):
    member = user_factory("member", display_name=XSS)
    client.force_login(member)

    page = client.get("/").content.decode()

    assert XSS not in page
    assert XSS_ESCAPED in page
