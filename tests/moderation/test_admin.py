"""The moderators' admin: the review queue of held messages (highlighted findings, the sender's
history, approve and reject one or many), the audit log of decisions, reports and restrictions.

Messages are scanned by the small scanners of tests.moderation.support (a phone number is
held), so these tests do not depend on the built-in scanners."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from inbox import selectors as inbox_selectors
from inbox.models import Event, Membership, Message
from inbox.services import send_message, start_conversation
from marketplace.accounts.services import grant_staff
from moderation import services
from moderation.admin import highlighted_text
from moderation.models import ModerationDecision, Restriction
from tests.moderation.support import HELD_TEXT, PHONE_DETAIL, TEST_SCANNERS

pytestmark = pytest.mark.django_db

QUEUE = "/admin/moderation/heldmessage/"


@pytest.fixture(autouse=True)
def test_scanners(settings):
    settings.MODERATION_SCANNERS = TEST_SCANNERS


def held(sender, conversation, body=HELD_TEXT) -> Message:
    message, _created = send_message(sender=sender, conversation=conversation, body=body)
    assert message.status == Message.Status.HELD, message.status
    return message


def results(response) -> list:
    assert response.status_code == 200, response.status_code
    return list(response.context["cl"].result_list)


def events_of(user, *, after: int = 0) -> list[Event]:
    return list(Event.objects.filter(user=user, cursor__gt=after).order_by("cursor"))


def membership(user, conversation) -> Membership:
    return Membership.objects.get(user=user, conversation=conversation)


def flash(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- the queue


def test_the_queue_lists_held_messages_only_oldest_first(staff_client, conversation, buyer, seller):
    first = held(seller, conversation, "Text me: +44 20 7946 0958")
    send_message(sender=seller, conversation=conversation, body="Happy to help, what colours?")
    second = held(seller, conversation)
    Message.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(hours=2))

    response = staff_client.get(QUEUE)

    assert [m.pk for m in results(response)] == [first.pk, second.pk]
    page = response.content.decode()
    assert "Happy to help" not in page
    assert "seller" in page and "buyer" in page  # sender and recipient columns
    assert "phone" in page  # what the scanners found


def test_the_queue_hides_decided_messages(staff_client, staff, conversation, seller):
    approved, rejected, waiting = (
        held(seller, conversation),
        held(seller, conversation),
        held(seller, conversation),
    )
    services.approve_message(message=approved, moderator=staff)
    services.reject_message(message=rejected, moderator=staff, reason="No phone numbers.")

    assert [m.pk for m in results(staff_client.get(QUEUE))] == [waiting.pk]


def test_the_admin_index_lists_the_moderation_sections(staff_client):
    page = staff_client.get("/admin/").content.decode()

    for url in [
        QUEUE,
        "/admin/moderation/moderationdecision/",
        "/admin/moderation/report/",
        "/admin/moderation/restriction/",
    ]:
        assert url in page


# --- the review page


def test_the_review_page_marks_the_findings_in_the_escaped_text(staff_client, conversation, seller):
    message = held(seller, conversation, '<script>alert("x")</script> ring <b>+1 415 555 0123</b> & bye')

    response = staff_client.get(f"{QUEUE}{message.pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert '<script>alert("x")</script>' not in page
    assert "<b>+1" not in page
    assert (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; ring &lt;b&gt;"
        '<mark class="finding" title="phone">+1 415 555 0123</mark>&lt;/b&gt; &amp; bye'
    ) in page
    # The findings: kind, score, detail.
    assert "<td>phone</td><td>0.80</td>" in page
    assert PHONE_DETAIL in page
    assert 'id="approve-form"' in page and 'id="reject-form"' in page
    assert 'name="_save"' not in page


def test_highlighting_merges_overlaps_and_skips_spans_that_do_not_fit():
    findings = [
        {"kind": "email", "start": 4, "end": 9, "score": 0.9},
        {"kind": "off_platform", "start": 7, "end": 12, "score": 0.6},
        {"kind": "spam", "start": 0, "end": 0, "score": 0.5},  # the whole message: nothing to mark
        {"kind": "phone", "start": 50, "end": 60, "score": 0.7},  # past the end
        "not a finding",
    ]

    html = highlighted_text("abc <a&b> tail", findings)

    assert html == 'abc <mark class="finding" title="email, off_platform">&lt;a&amp;b&gt; ta</mark>il'


def test_the_review_page_shows_the_senders_history(staff_client, staff, conversation, buyer, seller):
    earlier = held(seller, conversation, "My number is 0612345678")
    services.reject_message(message=earlier, moderator=staff, reason="No phone numbers, please.")
    send_message(sender=seller, conversation=conversation, body="Here is the first sketch.")
    services.report(reporter=buyer, conversation=conversation, reason="off_platform", note="Wants my phone")
    services.restrict(user=seller, kind="warning", reason="Shared contact details twice.", moderator=staff)
    message = held(seller, conversation)

    page = staff_client.get(f"{QUEUE}{message.pk}/change/").content.decode()

    assert "Here is the first sketch." in page
    assert "My number is 0612345678" in page
    assert "Rejected" in page and "Visible" in page
    assert "rejected by boss" in page
    assert "Wants my phone" in page
    assert "Shared contact details twice." in page
    assert "1 delivered, 1 held, 1 rejected" in page


def test_a_decided_message_shows_the_decision_and_no_buttons(staff_client, staff, conversation, seller):
    message = held(seller, conversation)
    services.approve_message(message=message, moderator=staff, note="A business line, fine.")

    page = staff_client.get(f"{QUEUE}{message.pk}/change/").content.decode()

    assert "Approved by boss" in page
    assert "A business line, fine." in page
    assert 'id="approve-form"' not in page


# --- approve and reject one


def test_approving_delivers_the_message_to_the_recipient(staff_client, staff, conversation, buyer, seller):
    message = held(seller, conversation)
    unread_before = membership(buyer, conversation).unread_count
    buyer_cursor = inbox_selectors.head_cursor(user_id=buyer.pk)
    seller_cursor = inbox_selectors.head_cursor(user_id=seller.pk)

    response = staff_client.post(f"{QUEUE}{message.pk}/approve/", {"note": "Fine"}, follow=True)

    assert response.redirect_chain[-1][0] == QUEUE
    assert any("approved" in text for text in flash(response))
    message.refresh_from_db()
    assert message.status == Message.Status.VISIBLE
    # The buyer's thread has it, one more unread, and their open tabs are told.
    thread = inbox_selectors.thread_page(membership=membership(buyer, conversation))
    assert message.pk in [m.pk for m in thread.items]
    assert membership(buyer, conversation).unread_count == unread_before + 1
    created = [e for e in events_of(buyer, after=buyer_cursor) if e.type == "message.created"]
    assert [e.payload["message"]["id"] for e in created] == [message.pk]
    assert created[0].payload["message"]["status"] == "visible"
    # The seller's copy turns normal.
    updated = [e for e in events_of(seller, after=seller_cursor) if e.type == "message.updated"]
    assert [e.payload["message"]["status"] for e in updated] == ["visible"]
    # The audit log: who and when.
    decision = ModerationDecision.objects.get(message=message)
    assert (decision.decision, decision.moderator, decision.note) == ("approved", staff, "Fine")
    assert timezone.now() - decision.created_at < timedelta(minutes=1)


def test_rejecting_tells_the_sender_only(staff_client, staff, conversation, buyer, seller):
    message = held(seller, conversation)
    buyer_cursor = inbox_selectors.head_cursor(user_id=buyer.pk)
    seller_cursor = inbox_selectors.head_cursor(user_id=seller.pk)
    reason = "Phone numbers are not shared here; keep talking in the inbox."

    response = staff_client.post(f"{QUEUE}{message.pk}/reject/", {"reason": reason}, follow=True)

    assert response.redirect_chain[-1][0] == QUEUE
    message.refresh_from_db()
    assert (message.status, message.moderation_reason) == (Message.Status.REJECTED, reason)
    updated = [e for e in events_of(seller, after=seller_cursor) if e.type == "message.updated"]
    assert len(updated) == 1
    assert updated[0].payload["message"]["status"] == "rejected"
    assert updated[0].payload["message"]["moderation_reason"] == reason
    assert events_of(buyer, after=buyer_cursor) == []
    thread = inbox_selectors.thread_page(membership=membership(buyer, conversation))
    assert message.pk not in [m.pk for m in thread.items]
    decision = ModerationDecision.objects.get(message=message)
    assert (decision.decision, decision.moderator) == ("rejected", staff)


def test_rejecting_needs_a_reason(staff_client, conversation, seller):
    message = held(seller, conversation)

    response = staff_client.post(f"{QUEUE}{message.pk}/reject/", {"reason": "  "}, follow=True)

    assert any("reason" in text for text in flash(response))
    message.refresh_from_db()
    assert message.status == Message.Status.HELD
    assert not ModerationDecision.objects.exists()


def test_a_second_decision_is_refused_and_changes_nothing(staff_client, staff, conversation, seller):
    message = held(seller, conversation)
    services.approve_message(message=message, moderator=staff)

    response = staff_client.post(f"{QUEUE}{message.pk}/reject/", {"reason": "Too late"}, follow=True)

    assert any("no longer waiting for review" in text for text in flash(response))
    message.refresh_from_db()
    assert message.status == Message.Status.VISIBLE
    assert ModerationDecision.objects.count() == 1


def test_a_get_on_a_decision_url_decides_nothing(staff_client, conversation, seller):
    message = held(seller, conversation)

    response = staff_client.get(f"{QUEUE}{message.pk}/approve/")

    assert response.status_code == 302
    message.refresh_from_db()
    assert message.status == Message.Status.HELD


# --- many at once


def test_approve_many_from_the_queue(staff_client, staff, conversation, buyer, seller):
    messages = [held(seller, conversation, f"Call +1 415 555 01{i:02}") for i in range(3)]

    response = staff_client.post(
        QUEUE, {"action": "approve_selected", "_selected_action": [m.pk for m in messages]}, follow=True
    )

    assert any("3 message(s) approved" in text for text in flash(response))
    assert set(Message.objects.filter(pk__in=[m.pk for m in messages]).values_list("status", flat=True)) == {
        "visible"
    }
    assert ModerationDecision.objects.filter(decision="approved", moderator=staff).count() == 3
    assert membership(buyer, conversation).unread_count == 3


def test_reject_many_asks_for_the_reason_first(staff_client, staff, conversation, seller):
    messages = [held(seller, conversation, f"Call +1 415 555 01{i:02}") for i in range(2)]
    selected = {"action": "reject_selected", "_selected_action": [m.pk for m in messages]}

    asked = staff_client.post(QUEUE, selected)

    assert asked.status_code == 200
    assert 'name="reason"' in asked.content.decode()
    assert Message.objects.filter(status="held").count() == 2

    empty = staff_client.post(QUEUE, {**selected, "apply": "1", "reason": " "})
    assert "Say why" in empty.content.decode()
    assert Message.objects.filter(status="held").count() == 2

    done = staff_client.post(QUEUE, {**selected, "apply": "1", "reason": "No phone numbers."}, follow=True)

    assert any("2 message(s) rejected" in text for text in flash(done))
    assert list(Message.objects.filter(pk__in=[m.pk for m in messages]).values_list("status", flat=True)) == [
        "rejected",
        "rejected",
    ]
    assert set(Message.objects.filter(status="rejected").values_list("moderation_reason", flat=True)) == {
        "No phone numbers."
    }
    assert ModerationDecision.objects.filter(decision="rejected", moderator=staff).count() == 2


# --- the audit log


def test_the_decisions_are_listed_read_only_with_who_and_when(staff_client, staff, conversation, seller):
    approved, rejected = held(seller, conversation), held(seller, conversation)
    services.approve_message(message=approved, moderator=staff)
    services.reject_message(message=rejected, moderator=staff, reason="No.")

    response = staff_client.get("/admin/moderation/moderationdecision/")

    rows = results(response)
    assert {(d.message_id, d.decision, d.moderator_id) for d in rows} == {
        (approved.pk, "approved", staff.pk),
        (rejected.pk, "rejected", staff.pk),
    }
    assert all(d.created_at for d in rows)
    assert staff_client.get("/admin/moderation/moderationdecision/add/").status_code == 403
    decision = rows[0]
    page = staff_client.get(f"/admin/moderation/moderationdecision/{decision.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert (
        staff_client.post(
            f"/admin/moderation/moderationdecision/{decision.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )


# --- reports


@pytest.fixture
def reports(conversation, buyer, seller, stranger):
    reply, _ = send_message(sender=seller, conversation=conversation, body="Pay me on the side, cheaper.")
    about_message = services.report(
        reporter=buyer,
        conversation=conversation,
        reason="off_platform",
        note="Asks to pay outside",
        message=reply,
    )
    other, _m, _c = start_conversation(sender=stranger, recipient_username="buyer", body="Cheap followers!!!")
    spam = services.report(reporter=buyer, conversation=other, reason="spam")
    return about_message, spam


def test_reports_are_listed_with_filters_search_and_links(staff_client, reports, conversation):
    about_message, spam = reports

    response = staff_client.get("/admin/moderation/report/")

    assert set(results(response)) == {about_message, spam}
    page = response.content.decode()
    assert f'href="/admin/inbox/conversation/{conversation.pk}/change/"' in page
    assert f'href="/admin/inbox/message/{about_message.message_id}/change/"' in page
    assert results(staff_client.get("/admin/moderation/report/", {"reason__exact": "spam"})) == [spam]
    assert results(staff_client.get("/admin/moderation/report/", {"status__exact": "open"})) == [
        about_message,
        spam,
    ] or set(results(staff_client.get("/admin/moderation/report/", {"status__exact": "open"}))) == {
        about_message,
        spam,
    }
    assert results(staff_client.get("/admin/moderation/report/", {"q": "stranger"})) == [spam]
    assert results(staff_client.get("/admin/moderation/report/", {"q": "outside"})) == [about_message]
    detail = staff_client.get(f"/admin/moderation/report/{about_message.pk}/change/").content.decode()
    assert "Pay me on the side, cheaper." in detail


def test_resolving_reports_asks_for_a_note(staff_client, staff, reports):
    about_message, spam = reports
    selected = {"action": "resolve_selected", "_selected_action": [about_message.pk]}

    asked = staff_client.post("/admin/moderation/report/", selected)
    assert 'name="resolution"' in asked.content.decode()

    done = staff_client.post(
        "/admin/moderation/report/",
        {**selected, "apply": "1", "resolution": "Warned the seller."},
        follow=True,
    )

    assert any("1 report(s) resolved" in text for text in flash(done))
    about_message.refresh_from_db()
    assert (about_message.status, about_message.resolved_by, about_message.resolution) == (
        "resolved",
        staff,
        "Warned the seller.",
    )
    assert about_message.resolved_at is not None
    spam.refresh_from_db()
    assert spam.status == "open"
    resolved = staff_client.get("/admin/moderation/report/", {"status__exact": "resolved"})
    assert results(resolved) == [about_message]


# --- restrictions


def test_an_admin_adds_a_warning(staff_client, staff, seller):
    response = staff_client.post(
        "/admin/moderation/restriction/add/",
        {"user": seller.pk, "kind": "warning", "reason": "Shared a phone number twice."},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    restriction = Restriction.objects.get(user=seller)
    assert (restriction.kind, restriction.created_by, restriction.ends_at) == ("warning", staff, None)
    assert restriction.reason == "Shared a phone number twice."


def test_an_admin_suspends_until_a_date_or_for_good(staff_client, staff, seller, stranger):
    until = timezone.localtime() + timedelta(days=3)
    temporary = staff_client.post(
        "/admin/moderation/restriction/add/",
        {
            "user": seller.pk,
            "kind": "suspension",
            "reason": "Spam.",
            "ends_at_0": until.strftime("%Y-%m-%d"),
            "ends_at_1": until.strftime("%H:%M:%S"),
        },
    )
    permanent = staff_client.post(
        "/admin/moderation/restriction/add/", {"user": stranger.pk, "kind": "suspension", "reason": "Scams."}
    )

    assert temporary.status_code == permanent.status_code == 302
    suspension = Restriction.objects.get(user=seller)
    assert suspension.kind == "suspension" and suspension.is_in_force()
    assert abs((suspension.ends_at - until).total_seconds()) < 1
    forever = Restriction.objects.get(user=stranger)
    assert forever.ends_at is None and forever.created_by == staff
    listed = staff_client.get("/admin/moderation/restriction/").content.decode()
    assert "permanent" in listed


def test_the_add_form_refuses_a_notice_an_empty_reason_or_a_past_end(staff_client, seller):
    past = timezone.localtime() - timedelta(days=1)
    for data in [
        {"user": seller.pk, "kind": "notice", "reason": "No."},
        {"user": seller.pk, "kind": "warning", "reason": "   "},
        {
            "user": seller.pk,
            "kind": "suspension",
            "reason": "Spam.",
            "ends_at_0": past.strftime("%Y-%m-%d"),
            "ends_at_1": past.strftime("%H:%M:%S"),
        },
    ]:
        response = staff_client.post("/admin/moderation/restriction/add/", data)
        assert response.status_code == 200, data
        assert response.context["adminform"].form.errors, data
    assert not Restriction.objects.exists()


def test_an_admin_lifts_any_step_and_filters_by_in_force(staff_client, staff, seller):
    ladder_step = Restriction.objects.create(
        user=seller, kind="suspension", reason="Repeatedly messaging too many new people (spam).",
        ends_at=timezone.now() + timedelta(hours=72),
    )  # fmt: skip
    warning = services.restrict(user=seller, kind="warning", reason="Be nice.", moderator=staff)
    in_force = results(staff_client.get("/admin/moderation/restriction/", {"in_force": "yes"}))
    assert set(in_force) == {ladder_step, warning}

    response = staff_client.post(
        "/admin/moderation/restriction/",
        {"action": "lift_selected", "_selected_action": [ladder_step.pk]},
        follow=True,
    )

    assert any("1 restriction(s) lifted" in text for text in flash(response))
    ladder_step.refresh_from_db()
    assert ladder_step.lifted_by == staff and ladder_step.lifted_at is not None
    assert not ladder_step.is_in_force()
    assert results(staff_client.get("/admin/moderation/restriction/", {"in_force": "yes"})) == [warning]
    assert results(staff_client.get("/admin/moderation/restriction/", {"in_force": "no"})) == [ladder_step]
    assert results(staff_client.get("/admin/moderation/restriction/", {"kind__exact": "warning"})) == [
        warning
    ]
    assert results(staff_client.get("/admin/moderation/restriction/", {"q": "seller"})) != []
    # History stays: no edit, no delete.
    page = staff_client.get(f"/admin/moderation/restriction/{warning.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert staff_client.get(f"/admin/moderation/restriction/{warning.pk}/delete/").status_code == 403


# --- who may


def test_non_staff_are_sent_to_the_admin_login_and_decide_nothing(client, buyer, conversation, seller):
    message = held(seller, conversation)
    client.force_login(buyer)

    for url in [QUEUE, f"{QUEUE}{message.pk}/change/", "/admin/moderation/report/"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url
    approve = client.post(f"{QUEUE}{message.pk}/approve/")
    bulk = client.post(QUEUE, {"action": "approve_selected", "_selected_action": [message.pk]})

    assert approve["Location"].startswith("/admin/login/")
    assert bulk["Location"].startswith("/admin/login/")
    message.refresh_from_db()
    assert message.status == Message.Status.HELD
    assert not ModerationDecision.objects.exists()


def test_staff_who_may_only_read_the_queue_cannot_decide(client, user_factory, conversation, seller):
    reader = user_factory("reader")
    grant_staff(user=reader, superuser=False)
    reader.user_permissions.add(Permission.objects.get(codename="view_heldmessage"))
    message = held(seller, conversation)
    client.force_login(reader)

    assert [m.pk for m in results(client.get(QUEUE))] == [message.pk]
    page = client.get(f"{QUEUE}{message.pk}/change/").content.decode()
    assert 'id="approve-form"' not in page
    assert client.post(f"{QUEUE}{message.pk}/approve/").status_code == 403
    refused = client.post(QUEUE, {"action": "approve_selected", "_selected_action": [message.pk]})
    assert refused.status_code in (200, 302)
    message.refresh_from_db()
    assert message.status == Message.Status.HELD
