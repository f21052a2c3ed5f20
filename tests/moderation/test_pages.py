"""Moderation on the pages: the sender's held and refused messages in the thread, refusals by a
rule above the composer, reporting a conversation or a message, the buyer's switch for sellers
they have not contacted, and the banner while a user is suspended or was warned.

Messages are scanned by the small scanners of tests.moderation.support (a phone number is
held, "wire me the money" is refused)."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from inbox.models import Membership, Message
from inbox.services import get_or_create_conversation, send_message, start_conversation
from moderation import services
from moderation.models import Report, Restriction
from tests.moderation.support import HELD_TEXT, PHONE_DETAIL, SCAM_DETAIL, TEST_SCANNERS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def test_scanners(settings):
    settings.MODERATION_SCANNERS = TEST_SCANNERS


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def html_of(response) -> str:
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def message_item(html: str, message_id: int) -> str:
    """The <li> of one message in a page or fragment."""
    match = re.search(rf'<li class="message[^"]*" id="m-{message_id}".*?</li>', html, re.S)
    assert match, f"message {message_id} is not on the page"
    return match.group(0)


def thread_of(user, conversation) -> str:
    return html_of(browser(user).get(f"/inbox/{conversation.pk}/"))


def held(sender, conversation, body=HELD_TEXT) -> Message:
    message, _created = send_message(sender=sender, conversation=conversation, body=body)
    assert message.status == Message.Status.HELD
    return message


# --- held and refused messages in the thread


def test_the_sender_sees_a_held_message_under_review_with_the_reason(conversation, buyer, seller):
    message = held(seller, conversation)

    item = message_item(thread_of(seller, conversation), message.pk)

    assert "Under review" in item
    assert PHONE_DETAIL in item
    assert "A moderator will check it before it is delivered." in item
    assert "moderation-held" in item
    # Nothing to do with it while it waits: no reply (it would quote it), no edit.
    assert 'data-action="reply"' not in item
    assert 'data-action="edit"' not in item


def test_the_recipient_never_sees_a_held_or_refused_message(conversation, buyer, seller):
    waiting = held(seller, conversation)
    refused, _ = send_message(sender=seller, conversation=conversation, body="Just wire me the money")
    assert refused.status == Message.Status.REJECTED

    page = thread_of(buyer, conversation)

    assert f'id="m-{waiting.pk}"' not in page and f'id="m-{refused.pk}"' not in page
    assert "415 555" not in page and "wire me" not in page
    assert "Under review" not in page and "Not delivered" not in page
    assert browser(buyer).get(f"/inbox/messages/{waiting.pk}/").status_code == 404


def test_the_sender_sees_a_refused_message_not_delivered_with_the_reason(conversation, seller):
    refused, _ = send_message(sender=seller, conversation=conversation, body="Just wire me the money")

    item = message_item(thread_of(seller, conversation), refused.pk)

    assert "Not delivered" in item
    assert SCAM_DETAIL in item
    assert "moderation-rejected" in item


def test_a_moderators_rejection_shows_its_reason_to_the_sender(conversation, staff, seller):
    message = held(seller, conversation)
    services.reject_message(message=message, moderator=staff, reason="No phone numbers, <please>.")

    item = message_item(html_of(browser(seller).get(f"/inbox/messages/{message.pk}/")), message.pk)

    assert "Not delivered" in item
    assert "No phone numbers, &lt;please&gt;." in item
    assert "Under review" not in item


def test_the_composer_shows_a_held_message_as_under_review(conversation, seller):
    response = browser(seller).post(f"/inbox/{conversation.pk}/send/", {"body": HELD_TEXT})

    message = Message.objects.get(body=HELD_TEXT)
    assert message.status == Message.Status.HELD
    assert "Under review" in message_item(html_of(response), message.pk)


def test_once_approved_both_see_a_normal_message(conversation, staff, buyer, seller):
    message = held(seller, conversation)
    services.approve_message(message=message, moderator=staff)

    for user in (buyer, seller):
        item = message_item(html_of(browser(user).get(f"/inbox/messages/{message.pk}/")), message.pk)
        assert "415 555 0123" in item
        assert "Under review" not in item and "moderation-held" not in item
    assert message.pk in [int(i) for i in re.findall(r'id="m-(\d+)"', thread_of(buyer, conversation))]


def test_an_approved_message_is_listed_in_its_place_for_the_recipient(conversation, staff, buyer, seller):
    message = held(seller, conversation)
    later, _ = send_message(sender=buyer, conversation=conversation, body="Are you there?")
    services.approve_message(message=message, moderator=staff)

    ids = [int(i) for i in re.findall(r'id="m-(\d+)"', thread_of(buyer, conversation))]

    assert ids.index(message.pk) < ids.index(later.pk)


def test_the_page_script_puts_an_older_message_in_its_place():
    """live.js: a message.created for a message older than the last one shown is fetched on its
    own and inserted before the first later message (the browser test drives it)."""
    from django.conf import settings

    script = (settings.BASE_DIR / "static" / "inbox" / "live.js").read_text()

    assert "function fetchOlderMessage(messageId)" in script
    assert "later.before(fresh)" in script


# --- refusals by a rule, above the composer


def test_a_send_refused_by_a_rule_answers_the_rule_in_json(conversation, buyer, seller, user_factory):
    other_buyer = user_factory("quiet", display_name="Quinn Quiet")
    untouched = get_or_create_conversation(user=seller, other_user=other_buyer)

    response = browser(seller).post(f"/inbox/{untouched.pk}/send/", {"body": "Hi! Need a logo?"})

    assert response.status_code == 403
    assert response.json()["error"] == "seller_cannot_start"
    assert "wait for this buyer to contact you" in response.json()["detail"]
    assert not Message.objects.filter(conversation=untouched).exists()


def test_a_suspended_user_is_told_until_when(conversation, staff, buyer):
    services.restrict(
        user=buyer,
        kind="suspension",
        reason="Spam.",
        moderator=staff,
        ends_at=timezone.now() + timedelta(days=2),
    )

    response = browser(buyer).post(f"/inbox/{conversation.pk}/send/", {"body": "Hello again"})

    assert response.status_code == 403
    assert response.json()["error"] == "suspended"
    assert "suspended from messaging until" in response.json()["detail"]


def test_the_composer_error_sits_above_the_text(conversation, buyer):
    page = thread_of(buyer, conversation)

    composer = page[page.index('id="composer"') :]
    assert composer.index('id="composer-error"') < composer.index('id="composer-body"')


# --- reports


def test_the_thread_offers_report_on_the_conversation_and_on_their_messages(conversation, buyer, seller):
    reply, _ = send_message(sender=seller, conversation=conversation, body="Sure, what colours?")
    mine = Message.objects.get(sender=buyer)

    page = thread_of(buyer, conversation)

    assert f'href="/inbox/{conversation.pk}/report/" data-report>Report…</a>' in page
    assert 'id="report-dialog"' in page
    assert f'data-report-message="{reply.pk}"' in message_item(page, reply.pk)
    assert "data-report-message" not in message_item(page, mine.pk)
    for value in ("spam", "inappropriate", "off_platform", "other"):
        assert f'name="reason" value="{value}"' in page


def test_the_report_page_without_script(conversation, buyer, seller):
    reply, _ = send_message(sender=seller, conversation=conversation, body="Pay me on the side, <cheaper>.")

    page = html_of(browser(buyer).get(f"/inbox/{conversation.pk}/report/?message={reply.pk}"))

    assert "Report Sam Seller" in page
    assert "About this message: “Pay me on the side, &lt;cheaper&gt;.”" in page
    assert f'name="message_id" value="{reply.pk}"' in page


def test_reporting_a_message_from_the_page(conversation, buyer, seller):
    reply, _ = send_message(sender=seller, conversation=conversation, body="Pay me on the side, cheaper.")

    response = browser(buyer).post(
        f"/inbox/{conversation.pk}/report/",
        {"reason": "off_platform", "note": "Asks to pay outside", "message_id": reply.pk},
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["detail"] == "Thanks: your report was sent to the moderators."
    assert body["conversations"][0]["spam"] is False
    report = Report.objects.get()
    assert (report.reporter, report.reported_user, report.message, report.reason, report.note) == (
        buyer,
        seller,
        reply,
        "off_platform",
        "Asks to pay outside",
    )


def test_reporting_spam_moves_the_conversation_to_spam(conversation, buyer, seller):
    client = browser(buyer)

    response = client.post(
        f"/inbox/{conversation.pk}/report/", {"reason": "spam"}, HTTP_ACCEPT="application/json"
    )

    assert response.json()["detail"].endswith("The conversation moved to Spam.")
    assert response.json()["conversations"][0]["spam"] is True
    assert Membership.objects.get(user=buyer, conversation=conversation).spam_at is not None
    assert Report.objects.get().reason == "spam"
    spam_list = html_of(client.get("/inbox/conversations/", {"filter": "spam"}))
    assert f'data-conversation-id="{conversation.pk}"' in spam_list
    all_list = html_of(client.get("/inbox/conversations/"))
    assert f'data-conversation-id="{conversation.pk}"' not in all_list


def test_a_plain_form_report_comes_back_with_a_message(conversation, buyer):
    response = browser(buyer).post(
        f"/inbox/{conversation.pk}/report/",
        {"reason": "inappropriate", "next": f"/inbox/{conversation.pk}/"},
        follow=True,
    )

    assert response.redirect_chain[-1][0] == f"/inbox/{conversation.pk}/"
    assert "Thanks: your report was sent to the moderators." in response.content.decode()


def test_a_report_without_a_reason_is_refused_and_keeps_the_note(conversation, buyer):
    as_json = browser(buyer).post(
        f"/inbox/{conversation.pk}/report/", {"note": "Rude"}, HTTP_ACCEPT="application/json"
    )
    as_page = browser(buyer).post(
        f"/inbox/{conversation.pk}/report/", {"reason": "bogus", "note": "Rude <b>"}
    )

    assert as_json.status_code == 422 and as_json.json()["error"] == "invalid_reason"
    assert as_page.status_code == 422
    assert "Choose a reason" in as_page.content.decode()
    assert "Rude &lt;b&gt;</textarea>" in as_page.content.decode()
    assert not Report.objects.exists()


def test_one_cannot_report_ones_own_message_or_others_conversations(conversation, buyer, seller, stranger):
    mine = Message.objects.get(sender=buyer)
    other, _m, _c = start_conversation(sender=stranger, recipient_username="seller", body="Hi Sam")
    theirs = Message.objects.get(conversation=other)

    own = browser(buyer).post(
        f"/inbox/{conversation.pk}/report/",
        {"reason": "spam", "message_id": mine.pk},
        HTTP_ACCEPT="application/json",
    )
    foreign_message = browser(buyer).post(
        f"/inbox/{conversation.pk}/report/", {"reason": "spam", "message_id": theirs.pk}
    )
    foreign_conversation = browser(buyer).post(f"/inbox/{other.pk}/report/", {"reason": "spam"})

    assert own.status_code == 409 and own.json()["error"] == "invalid_message"
    assert foreign_message.status_code == 404
    assert foreign_conversation.status_code == 404
    assert not Report.objects.exists()


# --- settings: the buyer's switch for sellers they have not contacted


def profile_form(user, **changes) -> dict:
    profile = user.profile
    data = {
        "display_name": profile.display_name,
        "headline": profile.headline,
        "role": profile.role,
        "timezone": profile.timezone,
        "languages": ", ".join(profile.languages),
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


LABEL = "Let sellers I have not contacted write to me (when we have an order)"


def test_a_buyer_switches_off_sellers_they_have_not_contacted(buyer):
    client = browser(buyer)
    page = html_of(client.get("/accounts/profile/"))
    assert LABEL in page
    assert re.search(r'<input type="checkbox" name="accepts_new_sellers"[^>]*checked', page)

    off = client.post("/accounts/profile/", profile_form(buyer, headline="Bakery owner"))

    assert off.status_code == 302
    buyer.profile.refresh_from_db()
    assert buyer.profile.accepts_new_sellers is False
    assert buyer.profile.headline == "Bakery owner"  # the rest of the form is saved as before
    assert not re.search(r'name="accepts_new_sellers"[^>]*checked', html_of(client.get("/accounts/profile/")))

    client.post("/accounts/profile/", profile_form(buyer, accepts_new_sellers="on"))
    buyer.profile.refresh_from_db()
    assert buyer.profile.accepts_new_sellers is True


def test_sellers_do_not_get_the_switch(seller):
    client = browser(seller)
    assert LABEL not in html_of(client.get("/accounts/profile/"))

    client.post("/accounts/profile/", profile_form(seller))

    seller.profile.refresh_from_db()
    assert seller.profile.accepts_new_sellers is True


def test_the_switch_closes_the_door_to_sellers_with_an_order(buyer, seller):
    from tests.factories import make_completed_order

    make_completed_order(buyer, seller)
    browser(buyer).post("/accounts/profile/", profile_form(buyer))  # unchecked
    conversation = get_or_create_conversation(user=seller, other_user=buyer)
    Message.objects.filter(conversation=conversation).delete()

    response = browser(seller).post(f"/inbox/{conversation.pk}/send/", {"body": "Another logo?"})

    assert response.status_code == 403
    assert response.json()["error"] == "buyer_closed_to_new_sellers"


def test_an_invalid_settings_form_is_shown_again(buyer):
    response = browser(buyer).post("/accounts/profile/", profile_form(buyer, display_name=""))

    assert response.status_code == 422
    buyer.profile.refresh_from_db()
    assert buyer.profile.display_name == "Bella Buyer"


# --- the banner


def banner(user, path="/inbox/") -> str:
    page = html_of(browser(user).get(path))
    match = re.search(
        r'<div class="banner banner-restriction[^"]*" id="standing-banner".*?</div>', page, re.S
    )
    return match.group(0) if match else ""


def test_a_temporary_suspension_shows_until_when(buyer, seller, staff):
    services.restrict(
        user=buyer,
        kind="suspension",
        reason="Spam, again.",
        moderator=staff,
        ends_at=timezone.now() + timedelta(days=2),
    )

    shown = banner(buyer)

    assert "suspended from messaging until" in shown
    assert "Spam, again." in shown
    for path in ("/inbox/search/?q=logo", "/inbox/labels/", "/inbox/new/?to=seller"):
        assert "suspended from messaging until" in banner(buyer, path), path


def test_a_permanent_suspension_says_so(buyer, staff):
    services.restrict(user=buyer, kind="suspension", reason="Scams.", moderator=staff)

    assert "permanently suspended from messaging" in banner(buyer)


def test_a_recent_warning_shows_and_an_old_or_lifted_one_does_not(buyer, seller, stranger, staff):
    services.restrict(user=buyer, kind="warning", reason="Shared a phone number.", moderator=staff)
    old = services.restrict(user=seller, kind="warning", reason="Long ago.", moderator=staff)
    Restriction.objects.filter(pk=old.pk).update(starts_at=timezone.now() - timedelta(days=31))
    lifted = services.restrict(user=stranger, kind="warning", reason="A mistake.", moderator=staff)
    services.lift_restriction(restriction=lifted, moderator=staff)

    assert "Shared a phone number." in banner(buyer)
    assert banner(seller) == ""
    assert banner(stranger) == ""


def test_an_ended_or_lifted_suspension_shows_no_banner(buyer, seller, staff):
    ended = services.restrict(
        user=buyer,
        kind="suspension",
        reason="Spam.",
        moderator=staff,
        ends_at=timezone.now() + timedelta(hours=1),
    )
    Restriction.objects.filter(pk=ended.pk).update(ends_at=timezone.now() - timedelta(minutes=1))
    lifted = services.restrict(user=seller, kind="suspension", reason="Spam.", moderator=staff)
    services.lift_restriction(restriction=lifted, moderator=staff)

    assert banner(buyer) == ""
    assert banner(seller) == ""


def test_nobody_else_sees_the_banner(buyer, seller, staff):
    services.restrict(user=buyer, kind="suspension", reason="Spam.", moderator=staff)

    assert banner(seller) == ""
