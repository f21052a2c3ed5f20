"""The inbox pages that organise conversations, as a signed-in browser uses them: filters with
counts, actions on one or many conversations, labels, blocks, replies, edits and deletions,
drafts and the Enter key."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox import services
from inbox.models import Block, Conversation, Label, Membership, MembershipLabel, Message
from inbox.services import send_message, start_conversation
from marketplace.accounts.models import Profile
from tests.factories import buyer_opens_conversation, make_completed_order, make_conversations

XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
SECRET = "the surprise is a cake shaped like a blue whale"  # never shown once deleted

# --- helpers -------------------------------------------------------------------------------------


def browser(user=None, **kwargs) -> Client:
    client = Client(**kwargs)
    if user is not None:
        client.force_login(user)
    return client


def html_of(response) -> str:
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def row_ids(html: str) -> list[int]:
    """The conversations the list shows, in order."""
    return [
        int(found)
        for found in re.findall(r'class="conversation-row[^"]*"\s+data-conversation-id="(\d+)"', html)
    ]


def filter_counts(html: str) -> dict[str, int]:
    """Each filter of the menu and the count beside it."""
    found = re.findall(
        r'data-filter="([\w-]+)"[^>]*>\s*<span class="filter-name">.*?</span> '
        r'<span class="count">(\d+)</span>',
        html,
        flags=re.S,
    )
    return {key: int(count) for key, count in found}


def current_filters(html: str) -> list[str]:
    return re.findall(r'data-filter="([\w-]+)"[^>]*aria-current="true"', html)


def message_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'data-message-id="(\d+)"', html)]


def act(client, action, *conversation_ids, label_id=None, json=True, **extra):
    form = {"action": action, "conversation_ids": [str(i) for i in conversation_ids], **extra}
    if label_id is not None:
        form["label_id"] = str(label_id)
    headers = {"HTTP_ACCEPT": "application/json"} if json else {}
    return client.post("/inbox/actions/", form, **headers)


def assert_json_error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == code
    assert body["detail"]
    return body["detail"]


def membership(user, conversation) -> Membership:
    return Membership.objects.get(user=user, conversation=conversation)


def age(message: Message, minutes: int) -> None:
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))


def page_messages(response) -> list[str]:
    """The messages (django.contrib.messages) a page shows in its flash list."""
    found = re.findall(r'<li class="flash-\w+">(.*?)</li>', response.content.decode(), flags=re.S)
    return [unescape(text) for text in found]


@pytest.fixture
def conversation(buyer, seller) -> Conversation:
    conversation, _, _ = start_conversation(sender=buyer, recipient_username="seller", body="Hi Sam")
    return conversation


@pytest.fixture
def inbox_of_three(buyer, seller, stranger, user_factory):
    """The buyer talks to the seller (starred), the stranger (archived) and a spammer (spam)."""
    spammer = user_factory("spammer", display_name="Cheap Followers")
    with_seller = buyer_opens_conversation(buyer, seller, "Hi Sam, how is my logo going?")
    send_message(sender=seller, conversation=with_seller, body="Your logo is ready")
    with_stranger, _, _ = start_conversation(sender=buyer, recipient_username="stranger", body="Hello Stan")
    with_spammer, _, _ = start_conversation(sender=spammer, recipient_username="buyer", body="Buy followers")
    services.file_conversations(user=buyer, conversation_ids=[with_seller.pk], action="star")
    services.file_conversations(user=buyer, conversation_ids=[with_stranger.pk], action="archive")
    services.file_conversations(user=buyer, conversation_ids=[with_spammer.pk], action="report_spam")
    return {"seller": with_seller, "stranger": with_stranger, "spammer": with_spammer}


# --- filters and counts --------------------------------------------------------------------------


def test_the_list_shows_every_filter_with_its_count_and_highlights_all(buyer, inbox_of_three):
    urgent = services.create_label(user=buyer, name="Urgent", color="#dc2626")
    services.file_conversations(
        user=buyer, conversation_ids=[inbox_of_three["seller"].pk], action="add_label", label=urgent
    )

    page = html_of(browser(buyer).get("/inbox/"))

    assert filter_counts(page) == {
        "all": 1,
        "unread": 1,  # the spammer's message is unread too, but Spam stays out of the other filters
        "starred": 1,
        "needs_reply": 1,
        "archived": 1,
        "spam": 1,
        "custom_offers": 0,
        "requests": 0,
        "follow_up": 0,
        f"label-{urgent.pk}": 1,
    }
    names = re.findall(
        r'<span class="filter-name">(?:<span class="label-dot"[^>]*></span>)?([^<]+)</span>', page
    )
    assert names == [
        "All conversations", "Unread", "Starred", "Needs reply", "Archived", "Spam", "Custom Offers",
        "Requests", "Follow-up", "Urgent",
    ]  # fmt: skip
    assert current_filters(page) == ["all"]
    assert row_ids(page) == [inbox_of_three["seller"].pk]
    assert 'style="--label-color: #dc2626"' in page


def test_counts_follow_new_messages(buyer, seller, inbox_of_three):
    send_message(sender=seller, conversation=inbox_of_three["seller"], body="And the invoice")
    send_message(sender=buyer, conversation=inbox_of_three["stranger"], body="Still there?")

    fragment = html_of(browser(buyer).get("/inbox/conversations/"))

    # The message to the stranger brought that conversation back from Archived.
    assert {key: filter_counts(fragment)[key] for key in ("all", "unread", "archived")} == {
        "all": 2,
        "unread": 1,
        "archived": 0,
    }


@pytest.mark.parametrize(
    ("query", "expected", "current"),
    [
        ("?filter=starred", ["seller"], "starred"),
        ("?filter=archived", ["stranger"], "archived"),
        ("?filter=spam", ["spammer"], "spam"),
        ("?filter=needs_reply", ["seller"], "needs_reply"),
        ("?filter=requests", [], "requests"),
    ],
)
def test_a_filter_in_the_query_string_lists_its_conversations(
    buyer, inbox_of_three, query, expected, current
):
    page = html_of(browser(buyer).get(f"/inbox/{query}"))

    assert row_ids(page) == [inbox_of_three[name].pk for name in expected]
    assert current_filters(page) == [current]
    # Opening a conversation keeps the filter in the address.
    for name in expected:
        assert f'href="/inbox/{inbox_of_three[name].pk}/{query}"' in page


def test_a_label_filter_lists_the_conversations_carrying_it(buyer, inbox_of_three):
    label = services.create_label(user=buyer, name="Bakery", color="#2563eb")
    services.file_conversations(
        user=buyer,
        conversation_ids=[inbox_of_three["seller"].pk, inbox_of_three["stranger"].pk],
        action="add_label",
        label=label,
    )

    page = html_of(browser(buyer).get(f"/inbox/?label={label.pk}"))

    assert sorted(row_ids(page)) == sorted([inbox_of_three["seller"].pk, inbox_of_three["stranger"].pk])
    assert current_filters(page) == [f"label-{label.pk}"]
    assert filter_counts(page)[f"label-{label.pk}"] == 2


@pytest.mark.parametrize(
    ("query", "status", "detail"),
    [
        ("?filter=nonsense", 422, "Unknown filter"),
        ("?label=999999", 404, "Label not found"),
        ("?label=abc", 404, "Label not found"),
        ("?label=99999999999999999999999", 404, "Label not found"),
        (f"?q={'x' * 10_000}", 422, "at most 100 characters"),
        ("?q=%00", 200, ""),
        ("?q=%27%22%3B--%20DROP", 200, ""),
    ],
)
def test_bad_list_parameters_show_a_clear_error_never_a_5xx(buyer, inbox_of_three, query, status, detail):
    response = browser(buyer).get(f"/inbox/{query}")

    assert response.status_code == status
    assert detail in response.content.decode()
    assert "Filters" in response.content.decode()  # the page is still there around the error


def test_someone_elses_label_is_not_a_filter_of_mine(buyer, seller, inbox_of_three):
    theirs = services.create_label(user=seller, name="Their label")

    response = browser(buyer).get(f"/inbox/?label={theirs.pk}")

    assert response.status_code == 404
    assert "Their label" not in response.content.decode()


def test_the_name_search_narrows_the_list_and_finds_deleted_conversations(buyer, inbox_of_three):
    services.file_conversations(user=buyer, conversation_ids=[inbox_of_three["seller"].pk], action="delete")
    client = browser(buyer)

    assert row_ids(html_of(client.get("/inbox/"))) == []
    found = html_of(client.get("/inbox/", {"q": "sam"}))
    by_username = html_of(client.get("/inbox/", {"q": "STRANG"}))

    assert row_ids(found) == [inbox_of_three["seller"].pk]
    assert "Deleted" in found  # the row says where it was
    assert 'value="sam"' in found  # the search box keeps the text
    assert row_ids(by_username) == [inbox_of_three["stranger"].pk]


def test_the_name_search_combines_with_a_filter(buyer, inbox_of_three):
    page = html_of(browser(buyer).get("/inbox/", {"filter": "archived", "q": "sam"}))

    assert row_ids(page) == []
    assert "No conversation with someone called “sam” in Archived." in page
    assert '<input type="hidden" name="filter" value="archived">' in page


def test_the_list_fragment_follows_the_filter_and_tells_htmx_the_address(buyer, inbox_of_three):
    client = browser(buyer)
    active = inbox_of_three["seller"].pk

    response = client.get(
        "/inbox/conversations/", {"filter": "starred", "q": "sa", "active": active}, HTTP_HX_REQUEST="true"
    )

    fragment = html_of(response)
    assert row_ids(fragment) == [active]
    assert "<html" not in fragment
    assert response["HX-Replace-Url"] == f"/inbox/{active}/?filter=starred&q=sa"
    assert f'href="/inbox/{active}/?filter=archived&amp;q=sa"' in fragment  # filters keep the search


def test_load_more_pages_through_a_long_list(buyer):
    make_conversations(buyer, 120)
    client = browser(buyer)

    first = html_of(client.get("/inbox/"))
    more_url = re.search(r'hx-get="(/inbox/conversations/\?[^"]+)"', first).group(1).replace("&amp;", "&")
    second = html_of(client.get(more_url))
    third_url = re.search(r'hx-get="(/inbox/conversations/\?[^"]+)"', second).group(1).replace("&amp;", "&")
    third = html_of(client.get(third_url))

    rows = row_ids(first) + row_ids(second) + row_ids(third)
    assert [len(row_ids(page)) for page in (first, second, third)] == [50, 50, 20]
    assert len(set(rows)) == 120
    assert 'data-page="2"' in second and 'data-page="3"' in third
    assert "Load more conversations" not in third
    assert "<html" not in second
    # A live refresh re-reads as many pages as were shown.
    assert len(row_ids(html_of(client.get("/inbox/conversations/", {"pages": 3})))) == 120


def test_label_names_are_escaped_in_every_menu(buyer, inbox_of_three):
    services.create_label(user=buyer, name=XSS)

    page = html_of(browser(buyer).get(f"/inbox/{inbox_of_three['seller'].pk}/"))

    assert XSS not in page
    assert XSS_ESCAPED in page


# --- actions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "field", "value"),
    [
        ("star", "starred_at", True),
        ("archive", "archived_at", True),
        ("delete", "deleted_at", True),
        ("report_spam", "spam_at", True),
    ],
)
def test_an_action_on_one_conversation_files_it_for_me_only(
    buyer, seller, conversation, action, field, value
):
    response = act(browser(buyer), action, conversation.pk)

    assert response.status_code == 200
    body = response.json()
    assert body["detail"]
    assert [state["conversation_id"] for state in body["conversations"]] == [conversation.pk]
    assert (getattr(membership(buyer, conversation), field) is not None) is value
    assert getattr(membership(seller, conversation), field) is None


@pytest.mark.parametrize(
    ("setup", "undo", "field"),
    [
        ("star", "unstar", "starred_at"),
        ("archive", "unarchive", "archived_at"),
        ("report_spam", "not_spam", "spam_at"),
    ],
)
def test_each_action_can_be_undone(buyer, conversation, setup, undo, field):
    client = browser(buyer)
    act(client, setup, conversation.pk)

    response = act(client, undo, conversation.pk)

    assert response.status_code == 200
    assert getattr(membership(buyer, conversation), field) is None


def test_mark_unread_and_read_by_hand(buyer, seller, conversation):
    client = browser(seller)
    client.post(f"/inbox/{conversation.pk}/read/")

    unread = act(client, "mark_unread", conversation.pk)
    assert unread.json()["conversations"][0]["unread_count"] == 1
    assert membership(seller, conversation).unread_count == 1

    read = act(client, "mark_read", conversation.pk)
    assert read.json()["conversations"][0]["unread_count"] == 0


def test_actions_on_many_conversations_at_once(buyer, inbox_of_three):
    ids = [inbox_of_three["seller"].pk, inbox_of_three["stranger"].pk, inbox_of_three["spammer"].pk]

    response = act(browser(buyer), "star", *ids)

    assert response.json()["detail"] == "Starred (3 conversations)."
    assert Membership.objects.filter(user=buyer, starred_at__isnull=False).count() == 3


def test_a_plain_form_post_goes_back_to_the_page_with_a_message(buyer, inbox_of_three):
    ids = [inbox_of_three["seller"].pk, inbox_of_three["stranger"].pk]
    client = browser(buyer)

    response = act(client, "archive", *ids, json=False, next="/inbox/?filter=starred")

    assert response.status_code == 302
    assert response.url == "/inbox/?filter=starred"
    page = client.get(response.url)
    assert page_messages(page) == ["Archived (2 conversations)."]


def test_a_redirect_never_leaves_the_site(buyer, conversation):
    response = act(browser(buyer), "star", conversation.pk, json=False, next="https://evil.example/")

    assert response.url == "/inbox/"


def test_labels_are_applied_and_removed_from_the_actions(buyer, inbox_of_three):
    label = services.create_label(user=buyer, name="Bakery")
    follow_up = services.follow_up_label()
    ids = [inbox_of_three["seller"].pk, inbox_of_three["stranger"].pk]
    client = browser(buyer)

    applied = act(client, "add_label", *ids, label_id=label.pk)
    followed = act(client, "add_label", ids[0], label_id=follow_up.pk)

    assert applied.json()["detail"] == "Label “Bakery” applied (2 conversations)."
    assert followed.json()["conversations"][0]["labels"] == sorted([label.pk, follow_up.pk])
    assert row_ids(html_of(client.get("/inbox/", {"filter": "follow_up"}))) == [ids[0]]

    removed = act(client, "remove_label", ids[0], label_id=label.pk)

    assert removed.json()["conversations"][0]["labels"] == [follow_up.pk]
    assert MembershipLabel.objects.filter(label=label).count() == 1


@pytest.mark.parametrize("action", sorted(services.FILING_ACTIONS))
def test_any_action_on_a_strangers_conversation_is_404_and_changes_nothing(
    buyer, seller, stranger, conversation, action
):
    mine, _, _ = start_conversation(sender=stranger, recipient_username="seller", body="hello")
    label = services.create_label(user=stranger, name="Mine")
    before = list(Membership.objects.order_by("pk").values())

    alone = act(browser(stranger), action, conversation.pk, label_id=label.pk)
    mixed = act(browser(stranger), action, mine.pk, conversation.pk, label_id=label.pk)
    plain = act(browser(stranger), action, conversation.pk, label_id=label.pk, json=False)

    assert (alone.status_code, mixed.status_code, plain.status_code) == (404, 404, 404)
    assert b"Hi Sam" not in alone.content
    assert list(Membership.objects.order_by("pk").values()) == before
    assert not MembershipLabel.objects.exists()


@pytest.mark.parametrize("bad_id", ["abc", "0", "-1", str(2**70), ""])
def test_ids_no_conversation_can_have_are_404(buyer, conversation, bad_id):
    response = act(browser(buyer), "star", bad_id)

    assert response.status_code == 404


def test_someone_elses_label_in_an_action_is_404(buyer, seller, conversation):
    theirs = services.create_label(user=seller, name="Theirs")

    response = act(browser(buyer), "add_label", conversation.pk, label_id=theirs.pk)

    assert response.status_code == 404
    assert not MembershipLabel.objects.exists()


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({"action": "explode"}, 422, "invalid_action"),
        ({"action": "add_label"}, 422, "label_required"),
        ({"action": "star", "conversation_ids": []}, 422, "no_conversations"),
    ],
)
def test_refused_actions_answer_a_clear_4xx(buyer, conversation, form, status, code):
    form = {"conversation_ids": [str(conversation.pk)], **form}
    client = browser(buyer)

    response = client.post("/inbox/actions/", form, HTTP_ACCEPT="application/json")
    plain = client.post("/inbox/actions/", {**form, "next": f"/inbox/{conversation.pk}/"})

    assert_json_error(response, status, code)
    assert plain.status_code == 302
    assert page_messages(client.get(plain.url)) == [response.json()["detail"]]


def test_too_many_conversations_at_once_is_refused(buyer):
    make_conversations(buyer, 101)
    ids = list(Membership.objects.filter(user=buyer).values_list("conversation_id", flat=True))

    response = act(browser(buyer), "star", *ids)

    assert_json_error(response, 422, "too_many_conversations")
    assert not Membership.objects.filter(starred_at__isnull=False).exists()


def test_actions_need_post_csrf_and_a_login(buyer, conversation):
    assert browser(buyer).get("/inbox/actions/").status_code == 405
    assert act(browser(buyer, enforce_csrf_checks=True), "star", conversation.pk).status_code == 403
    assert act(Client(), "star", conversation.pk).status_code == 302
    assert membership(buyer, conversation).starred_at is None


def test_the_conversation_page_shows_how_it_is_filed(buyer, conversation):
    label = services.create_label(user=buyer, name="Bakery", color="#2563eb")
    services.file_conversations(user=buyer, conversation_ids=[conversation.pk], action="star")
    services.file_conversations(
        user=buyer, conversation_ids=[conversation.pk], action="add_label", label=label
    )

    page = html_of(browser(buyer).get(f"/inbox/{conversation.pk}/"))

    assert re.search(r'value="star" data-when="unstarred" hidden', page)
    assert re.search(r'value="unstar" data-when="starred">', page)
    assert f'data-ids="{label.pk}"' in page
    assert '<li class="label-chip" style="--label-color: #2563eb">Bakery</li>' in page


# --- blocking ------------------------------------------------------------------------------------


def test_blocking_from_the_panel_refuses_their_messages_until_unblocked(buyer, seller, conversation):
    make_completed_order(buyer, seller)
    client = browser(buyer)

    response = client.post(f"/inbox/{conversation.pk}/block/", follow=True)

    assert page_messages(response) == ["You blocked Sam Seller: their messages are refused."]
    assert "Unblock Sam Seller" in response.content.decode()
    refused = browser(seller).post(f"/inbox/{conversation.pk}/send/", {"body": "hello?"})
    assert_json_error(refused, 403, "blocked_by_recipient")

    response = client.post(f"/inbox/{conversation.pk}/unblock/", follow=True)

    assert page_messages(response) == ["You unblocked Sam Seller."]
    assert not Block.objects.exists()
    assert browser(seller).post(f"/inbox/{conversation.pk}/send/", {"body": "hello!"}).status_code == 200


def test_a_refusal_to_block_is_shown_on_the_page(buyer, seller, conversation):
    client = browser(buyer)
    page = client.post(f"/inbox/{conversation.pk}/block/", follow=True)
    as_json = client.post(f"/inbox/{conversation.pk}/block/", HTTP_ACCEPT="application/json")

    assert page.status_code == 200
    assert page_messages(page) == ["You can block someone once an order between you is completed."]
    assert_json_error(as_json, 403, "block_not_allowed")
    assert not Block.objects.exists()


def test_a_stranger_cannot_block_or_unblock_through_a_conversation(stranger, conversation):
    assert browser(stranger).post(f"/inbox/{conversation.pk}/block/").status_code == 404
    assert browser(stranger).post(f"/inbox/{conversation.pk}/unblock/").status_code == 404
    assert not Block.objects.exists()


# --- labels page ---------------------------------------------------------------------------------


def test_the_labels_page_creates_renames_recolours_and_deletes(buyer):
    client = browser(buyer)

    created = client.post("/inbox/labels/", {"name": "  Bakery   rebrand ", "color": "#2563eb"}, follow=True)
    label = Label.objects.get(user=buyer)
    assert (label.name, label.color) == ("Bakery rebrand", "#2563eb")
    assert page_messages(created) == ["Label “Bakery rebrand” created."]

    saved = client.post(f"/inbox/labels/{label.pk}/", {"name": "Rebrand", "color": "#dc2626"}, follow=True)
    label.refresh_from_db()
    assert (label.name, label.color) == ("Rebrand", "#dc2626")
    assert 'value="Rebrand"' in saved.content.decode()

    deleted = client.post(f"/inbox/labels/{label.pk}/delete/", follow=True)
    assert not Label.objects.filter(user=buyer).exists()
    assert page_messages(deleted) == ["Label “Rebrand” deleted; the conversations keep everything else."]


def test_follow_up_is_shown_as_shared_and_cannot_be_changed(buyer):
    follow_up = services.follow_up_label()
    client = browser(buyer)

    page = html_of(client.get("/inbox/labels/"))
    renamed = client.post(f"/inbox/labels/{follow_up.pk}/", {"name": "Mine now"})
    deleted = client.post(f"/inbox/labels/{follow_up.pk}/delete/", follow=True)

    assert "Shared: everyone has this label" in page
    assert f'action="/inbox/labels/{follow_up.pk}/"' not in page
    assert renamed.status_code == 403
    assert "Follow-up is a label everyone has" in renamed.content.decode()
    assert page_messages(deleted) == ["Follow-up is a label everyone has; it cannot be changed."]
    assert Label.objects.filter(pk=follow_up.pk, name="Follow-up").exists()


@pytest.mark.parametrize(
    ("name", "color", "status", "field", "detail"),
    [
        ("", "#123456", 422, "name", "A label needs a name."),
        ("   ", "#123456", 422, "name", "A label needs a name."),
        ("x" * 10_000, "#123456", 422, "name", "at most 40 characters"),
        ("follow-UP", "#123456", 409, "name", "You already have a label called"),
        ("Fine", "red", 422, "color", "A colour is written #rrggbb"),
    ],
)
def test_label_errors_are_shown_beside_the_field_with_the_typed_text_kept(
    buyer, name, color, status, field, detail
):
    services.follow_up_label()

    response = browser(buyer).post("/inbox/labels/", {"name": name, "color": color})

    assert response.status_code == status
    page = response.content.decode()
    error = re.search(rf'<div class="form-error" id="new-label-{field}-error" role="alert">(.*?)</div>', page)
    assert error and detail in error.group(1)
    assert f'aria-describedby="new-label-{field}-error"' in page
    assert f'id="new-label-name" name="name" value="{name}"' in page
    assert not Label.objects.filter(user=buyer).exists()


def test_a_rename_to_a_taken_name_keeps_the_text_beside_that_label(buyer):
    bakery = services.create_label(user=buyer, name="Bakery")
    services.create_label(user=buyer, name="Urgent")

    response = browser(buyer).post(f"/inbox/labels/{bakery.pk}/", {"name": "URGENT", "color": "#111111"})

    assert response.status_code == 409
    page = response.content.decode()
    assert f'id="label-{bakery.pk}-name-error"' in page
    assert f'id="label-{bakery.pk}-name" name="name" value="URGENT"' in page
    assert f'id="label-{bakery.pk}-color" name="color" value="#111111"' in page
    bakery.refresh_from_db()
    assert bakery.name == "Bakery"


def test_someone_elses_label_is_404_on_the_labels_page(buyer, seller):
    theirs = services.create_label(user=seller, name="Theirs")
    client = browser(buyer)

    assert client.post(f"/inbox/labels/{theirs.pk}/", {"name": "Mine"}).status_code == 404
    assert client.post(f"/inbox/labels/{theirs.pk}/delete/").status_code == 404
    assert "Theirs" not in html_of(client.get("/inbox/labels/"))
    assert Label.objects.get(pk=theirs.pk).name == "Theirs"


# --- replies ------------------------------------------------------------------------------------


def test_a_reply_shows_a_quote_that_leads_to_the_original(buyer, seller, conversation):
    original = Message.objects.get(body="Hi Sam")

    response = browser(seller).post(
        f"/inbox/{conversation.pk}/send/", {"body": "Hello Bella!", "reply_to": original.pk}
    )

    fragment = html_of(response)
    reply = Message.objects.get(body="Hello Bella!")
    assert reply.reply_to_id == original.pk
    href = f'href="/inbox/{conversation.pk}/?message={original.pk}#m-{original.pk}"'
    assert href in fragment
    assert f'data-quote-id="{original.pk}"' in fragment
    assert '<span class="quote-name">Bella Buyer</span>' in fragment
    assert "Hi Sam" in fragment
    buyers_page = html_of(browser(buyer).get(f"/inbox/{conversation.pk}/"))
    assert href in buyers_page


@pytest.mark.parametrize("reply_to", ["elsewhere", "abc", str(2**70), "0"])
def test_a_reply_to_a_message_outside_the_conversation_is_refused(
    buyer, seller, stranger, conversation, reply_to
):
    other, _, _ = start_conversation(sender=stranger, recipient_username="seller", body="Elsewhere")
    reply_to = str(other.messages.get().pk) if reply_to == "elsewhere" else reply_to

    response = browser(seller).post(f"/inbox/{conversation.pk}/send/", {"body": "hi", "reply_to": reply_to})

    assert_json_error(response, 404, "invalid_reply_to")
    assert not Message.objects.filter(body="hi").exists()


# --- edits and deletions -----------------------------------------------------------------------


def test_own_recent_messages_offer_edit_and_delete_others_do_not(buyer, seller, conversation):
    mine = Message.objects.get(body="Hi Sam")
    old, _ = send_message(sender=buyer, conversation=conversation, body="Sent long ago")
    theirs, _ = send_message(sender=seller, conversation=conversation, body="Hello Bella")
    age(old, 16)

    page = html_of(browser(buyer).get(f"/inbox/{conversation.pk}/"))

    def item(message):
        return re.search(rf'<li class="message[^>]*id="m-{message.pk}".*?</li>', page, flags=re.S).group(0)

    assert 'data-action="edit"' in item(mine) and 'data-action="delete"' in item(mine)
    assert re.search(r'data-edit-seconds-left="(8\d\d|9\d\d)"', item(mine))
    assert 'data-action="edit"' not in item(old) and "data-edit-seconds-left" not in item(old)
    assert 'data-action="edit"' not in item(theirs) and 'data-action="translate"' in item(theirs)
    assert 'data-action="translate"' not in item(mine)


def test_editing_answers_the_message_re_rendered_and_the_other_person_sees_it(buyer, seller, conversation):
    mine = Message.objects.get(body="Hi Sam")

    response = browser(buyer).post(
        f"/inbox/messages/{mine.pk}/edit/", {"body": "Hi Sam! See https://example.com"}
    )

    fragment = html_of(response)
    assert message_ids(fragment) == [mine.pk]
    assert '<a href="https://example.com"' in fragment
    assert ">edited</span>" in fragment
    sellers_page = html_of(browser(seller).get(f"/inbox/{conversation.pk}/"))
    assert "Hi Sam! See" in sellers_page and ">edited</span>" in sellers_page
    assert html_of(browser(seller).get(f"/inbox/messages/{mine.pk}/")).count("Hi Sam! See") == 1


def test_an_edit_is_escaped(buyer, seller, conversation):
    mine = Message.objects.get(body="Hi Sam")

    fragment = html_of(browser(buyer).post(f"/inbox/messages/{mine.pk}/edit/", {"body": XSS}))

    assert XSS not in fragment
    assert XSS_ESCAPED in fragment


@pytest.mark.parametrize("verb", ["edit", "delete"])
def test_after_15_minutes_the_page_is_told_why_and_nothing_changes(buyer, conversation, verb):
    mine = Message.objects.get(body="Hi Sam")
    age(mine, 16)

    response = browser(buyer).post(f"/inbox/messages/{mine.pk}/{verb}/", {"body": "too late"})

    detail = assert_json_error(response, 403, "edit_window_closed")
    assert "15 minutes" in detail
    mine.refresh_from_db()
    assert (mine.body, mine.deleted_at) == ("Hi Sam", None)


@pytest.mark.parametrize("verb", ["edit", "delete"])
def test_someone_elses_message_is_refused_with_a_reason(seller, conversation, verb):
    theirs = Message.objects.get(body="Hi Sam")

    response = browser(seller).post(f"/inbox/messages/{theirs.pk}/{verb}/", {"body": "changed"})

    assert_json_error(response, 403, "not_your_message")
    theirs.refresh_from_db()
    assert (theirs.body, theirs.deleted_at) == ("Hi Sam", None)


@pytest.mark.parametrize("path", ["{id}/", "{id}/edit/", "{id}/delete/"])
def test_a_strangers_message_is_404(stranger, conversation, path):
    message = Message.objects.get(body="Hi Sam")
    client = browser(stranger)
    url = "/inbox/messages/" + path.format(id=message.pk)

    response = client.get(url) if path == "{id}/" else client.post(url, {"body": "x"})

    assert response.status_code == 404
    assert b"Hi Sam" not in response.content
    assert client.get("/inbox/messages/99999999999999999999/").status_code == 404


def test_an_empty_edit_is_refused_and_changes_nothing(buyer, conversation):
    mine = Message.objects.get(body="Hi Sam")

    response = browser(buyer).post(f"/inbox/messages/{mine.pk}/edit/", {"body": "   "})

    assert_json_error(response, 422, "empty_body")
    mine.refresh_from_db()
    assert mine.body == "Hi Sam"


def test_a_deleted_messages_text_never_reaches_the_other_persons_page(buyer, seller, conversation):
    secret, _ = send_message(sender=buyer, conversation=conversation, body=SECRET)
    send_message(sender=seller, conversation=conversation, body="What did you say?", reply_to_id=secret.pk)
    send_message(sender=buyer, conversation=conversation, body="Never mind")
    deleted = html_of(browser(buyer).post(f"/inbox/messages/{secret.pk}/delete/"))
    assert "This message was deleted" in deleted
    secret.refresh_from_db()
    assert secret.is_deleted and secret.body == SECRET  # kept for admins
    # Deleted last: the list preview says so.
    last, _ = send_message(sender=buyer, conversation=conversation, body=f"{SECRET} again")
    browser(buyer).post(f"/inbox/messages/{last.pk}/delete/")
    seller_client = browser(seller)

    pages = {
        "page": html_of(seller_client.get(f"/inbox/{conversation.pk}/")),
        "list": html_of(seller_client.get("/inbox/")),
        "list fragment": html_of(seller_client.get("/inbox/conversations/")),
        "messages": html_of(seller_client.get(f"/inbox/{conversation.pk}/messages/", {"after": 0})),
        "message": html_of(seller_client.get(f"/inbox/messages/{secret.pk}/")),
        "search for it": html_of(seller_client.get("/inbox/", {"q": "buyer"})),
    }

    for name, html in pages.items():
        assert "blue whale" not in html, name
    assert pages["page"].count("This message was deleted") == 3  # two placeholders and one quote
    assert "Message deleted" in pages["list"]
    assert 'data-action="reply"' not in pages["message"]


# --- drafts --------------------------------------------------------------------------------------


def test_a_draft_is_kept_on_the_server_and_comes_back_on_another_device(buyer, seller, conversation):
    response = browser(buyer).post(f"/inbox/{conversation.pk}/draft/", {"text": "Half a thought </textarea>"})

    assert response.status_code == 204
    other_device = html_of(browser(buyer).get(f"/inbox/{conversation.pk}/"))
    assert ">Half a thought &lt;/textarea&gt;</textarea>" in other_device
    assert "Half a thought" not in html_of(browser(seller).get(f"/inbox/{conversation.pk}/"))
    # The list shows it beside the conversation while another one is open.
    assert "Draft:</span> Half a thought" in html_of(browser(buyer).get("/inbox/"))


def test_sending_clears_the_draft(buyer, conversation):
    client = browser(buyer)
    client.post(f"/inbox/{conversation.pk}/draft/", {"text": "Half a thought"})

    client.post(f"/inbox/{conversation.pk}/send/", {"body": "A whole thought"})

    assert membership(buyer, conversation).draft == ""
    assert "Half a thought" not in html_of(client.get(f"/inbox/{conversation.pk}/"))


def test_a_draft_too_long_is_refused_and_a_strangers_is_404(buyer, stranger, conversation):
    too_long = browser(buyer).post(f"/inbox/{conversation.pk}/draft/", {"text": "x" * 100_000})
    stranger_response = browser(stranger).post(f"/inbox/{conversation.pk}/draft/", {"text": "hi"})

    assert_json_error(too_long, 422, "draft_too_long")
    assert stranger_response.status_code == 404
    assert Membership.objects.filter(draft__gt="").count() == 0


# --- the Enter key -------------------------------------------------------------------------------


def test_the_enter_key_preference_is_saved_per_user(buyer, seller, conversation):
    client = browser(buyer)
    assert 'data-enter-sends="1"' in html_of(client.get(f"/inbox/{conversation.pk}/"))

    response = client.post("/inbox/preferences/", {"enter_sends": "0"}, HTTP_ACCEPT="application/json")

    assert response.json() == {
        "detail": "Enter now adds a new line; Shift+Enter sends.",
        "enter_sends": False,
    }
    assert Profile.objects.get(user=buyer).enter_sends is False
    page = html_of(client.get(f"/inbox/{conversation.pk}/"))
    assert 'data-enter-sends="0"' in page
    assert '<option value="0" selected>Enter adds a new line</option>' in page
    assert 'data-enter-sends="1"' in html_of(browser(seller).get(f"/inbox/{conversation.pk}/"))


def test_the_enter_key_form_works_without_script_and_refuses_nonsense(buyer, conversation):
    client = browser(buyer)

    plain = client.post("/inbox/preferences/", {"enter_sends": "0", "next": f"/inbox/{conversation.pk}/"})
    nonsense = client.post("/inbox/preferences/", {"enter_sends": "maybe"}, HTTP_ACCEPT="application/json")

    assert (plain.status_code, plain.url) == (302, f"/inbox/{conversation.pk}/")
    assert_json_error(nonsense, 422, "invalid_preference")
    assert Profile.objects.get(user=buyer).enter_sends is False


# --- scale ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "?filter=unread", "?filter=starred", "?label={label}", "?q=bulk"])
def test_the_inbox_page_costs_the_same_queries_at_10_and_1000_conversations(buyer, query):
    label = services.create_label(user=buyer, name="Everything")
    client = browser(buyer)

    def file_everything():
        ids = list(buyer.memberships.values_list("conversation_id", flat=True))
        for chunk in range(0, len(ids), 100):
            for action in ("star", "add_label"):
                services.file_conversations(
                    user=buyer, conversation_ids=ids[chunk : chunk + 100], action=action, label=label
                )

    def load():
        with CaptureQueriesContext(connection) as queries:
            page = html_of(client.get("/inbox/" + query.format(label=label.pk)))
        return len(queries), page

    make_conversations(buyer, 10)
    file_everything()
    load()  # warm up the session
    at_10, small = load()
    make_conversations(buyer, 990, start=10)
    file_everything()
    at_1000, large = load()

    assert (len(row_ids(small)), len(row_ids(large))) == (10, 50)
    assert at_10 == at_1000


def test_the_conversation_page_costs_the_same_queries_at_10_and_1000_conversations(
    buyer, seller, conversation
):
    client = browser(buyer)

    def load():
        with CaptureQueriesContext(connection) as queries:
            html_of(client.get(f"/inbox/{conversation.pk}/"))
        return len(queries)

    make_conversations(buyer, 10)
    load()
    at_10 = load()
    make_conversations(buyer, 990, start=10)

    assert load() == at_10
