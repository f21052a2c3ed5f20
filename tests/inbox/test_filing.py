"""Filing conversations: filters, counts, actions one or many at a time, labels, blocking."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from inbox import selectors, services
from inbox.models import Block, Conversation, Label, Membership, Message
from marketplace.errors import InvalidInput
from tests.factories import (
    bearer_headers,
    buyer_opens_conversation,
    make_completed_order,
    make_conversations,
)
from tests.helpers import logged_events

pytestmark = pytest.mark.django_db


class Api:
    def __init__(self, user):
        self.client = Client()
        self.headers = bearer_headers(user)

    def get(self, path, **params):
        response = self.client.get(path, params, **self.headers)
        assert response.status_code < 500
        return response

    def post(self, path, payload=None):
        response = self.client.post(path, payload or {}, content_type="application/json", **self.headers)
        assert response.status_code < 500
        return response

    def patch(self, path, payload):
        response = self.client.patch(path, payload, content_type="application/json", **self.headers)
        assert response.status_code < 500
        return response

    def delete(self, path):
        response = self.client.delete(path, **self.headers)
        assert response.status_code < 500
        return response

    def ids(self, **params) -> list[int]:
        response = self.get("/api/v1/conversations", **params)
        assert response.status_code == 200, response.content
        return [c["id"] for c in response.json()["items"]]

    def act(self, action, *conversation_ids, label_id=None):
        return self.post(
            "/api/v1/conversations/actions",
            {"action": action, "conversation_ids": list(conversation_ids), "label_id": label_id},
        )


def talk(sender, recipient, body="Hello") -> Conversation:
    conversation, _message, _created = services.start_conversation(
        sender=sender, recipient_username=recipient.username, body=body
    )
    return conversation


def say(sender, conversation, body="More") -> Message:
    message, _created = services.send_message(sender=sender, conversation=conversation, body=body)
    return message


def seller_writes(seller, buyer, body="Hello") -> Conversation:
    """A conversation whose last word is the seller's (the buyer opened it: sellers do not write first)."""
    conversation = buyer_opens_conversation(buyer, seller)
    say(seller, conversation, body)
    return conversation


@pytest.fixture
def buyer_api(buyer):
    return Api(buyer)


# --- filters --------------------------------------------------------------------------------


def test_star_archive_and_spam_move_a_conversation_between_filters_for_me_only(buyer, seller, buyer_api):
    conversation = seller_writes(seller, buyer)
    assert buyer_api.ids() == [conversation.pk]

    assert buyer_api.act("star", conversation.pk).status_code == 200
    assert buyer_api.ids(filter="starred") == [conversation.pk]

    assert buyer_api.act("archive", conversation.pk).json()[0]["archived"] is True
    assert buyer_api.ids() == []
    assert buyer_api.ids(filter="archived") == [conversation.pk]
    assert buyer_api.ids(filter="starred") == [conversation.pk]  # still starred while archived

    buyer_api.act("report_spam", conversation.pk)
    assert buyer_api.ids(filter="spam") == [conversation.pk]
    assert buyer_api.ids(filter="archived") == buyer_api.ids(filter="starred") == []

    # The seller's inbox did not move.
    assert Api(seller).ids() == [conversation.pk]


def test_a_new_message_brings_an_archived_or_deleted_conversation_back_but_not_a_spam_one(
    buyer, seller, stranger, user_factory, buyer_api
):
    spammer = user_factory("spammer")
    archived, deleted, spam = seller_writes(seller, buyer), talk(stranger, buyer), talk(spammer, buyer)
    buyer_api.act("archive", archived.pk)
    buyer_api.act("delete", deleted.pk)
    buyer_api.act("report_spam", spam.pk)
    assert buyer_api.ids() == []

    say(seller, archived, "Any news?")
    say(stranger, deleted, "Hello again")
    say(spammer, spam, "Buy now")

    assert set(buyer_api.ids()) == {archived.pk, deleted.pk}
    assert buyer_api.ids(filter="spam") == [spam.pk]


def test_a_deleted_conversation_is_found_again_by_the_other_persons_name(buyer, seller, stranger, buyer_api):
    with_seller, with_stranger = talk(buyer, seller), talk(buyer, stranger)
    buyer_api.act("delete", with_seller.pk)
    assert buyer_api.ids() == [with_stranger.pk]

    assert buyer_api.ids(q="sam") == [with_seller.pk]  # display name "Sam Seller"
    assert buyer_api.ids(q="SELLER") == [with_seller.pk]
    conversation = buyer_api.get(f"/api/v1/conversations/{with_seller.pk}").json()
    assert conversation["deleted"] is True
    # The seller still has it, and writing again brings it back for the buyer.
    assert Api(seller).ids() == [with_seller.pk]
    say(buyer, with_seller)
    assert set(buyer_api.ids()) == {with_seller.pk, with_stranger.pk}


def test_needs_reply_means_the_last_word_is_theirs_whether_or_not_i_read_it(
    buyer, seller, stranger, buyer_api
):
    waiting = seller_writes(seller, buyer, "Can you send the brief?")
    answered = talk(stranger, buyer, "Hi")
    say(buyer, answered, "Hi, how can I help?")
    services.mark_read(user=buyer, conversation=waiting)

    assert buyer_api.ids(filter="needs_reply") == [waiting.pk]
    assert buyer_api.get(f"/api/v1/conversations/{waiting.pk}").json()["needs_reply"] is True

    say(buyer, waiting, "Here it is")
    assert buyer_api.ids(filter="needs_reply") == []


def test_filters_combine_with_the_name_search(buyer, seller, stranger, buyer_api):
    with_seller, with_stranger = seller_writes(seller, buyer), talk(stranger, buyer)
    buyer_api.act("star", with_seller.pk, with_stranger.pk)
    assert set(buyer_api.ids(filter="starred")) == {with_seller.pk, with_stranger.pk}
    assert buyer_api.ids(filter="starred", q="stan") == [with_stranger.pk]
    assert buyer_api.ids(filter="unread", q="stan") == [with_stranger.pk]


def test_counts_beside_each_filter_stay_true_as_messages_arrive(buyer, seller, stranger, buyer_api):
    first = seller_writes(seller, buyer)
    counts = buyer_api.get("/api/v1/conversations/counts").json()
    assert (counts["all"], counts["unread"], counts["needs_reply"], counts["starred"]) == (1, 1, 1, 0)

    talk(stranger, buyer)
    buyer_api.act("star", first.pk)
    services.mark_read(user=buyer, conversation=first)
    counts = buyer_api.get("/api/v1/conversations/counts").json()
    assert (counts["all"], counts["unread"], counts["needs_reply"], counts["starred"]) == (2, 1, 2, 1)

    buyer_api.act("archive", first.pk)
    counts = buyer_api.get("/api/v1/conversations/counts").json()
    assert (counts["all"], counts["archived"], counts["needs_reply"]) == (1, 1, 1)


def test_unknown_filters_and_overlong_names_are_clear_4xx(buyer_api):
    assert buyer_api.get("/api/v1/conversations", filter="everything").json()["error"] == "invalid_filter"
    response = buyer_api.get("/api/v1/conversations", q="x" * 5000)
    assert response.status_code == 422
    assert buyer_api.get("/api/v1/conversations", label=999999).status_code == 404
    for query in ['"; DROP TABLE inbox_message; --', "%", "_", "a\\b", "' OR 1=1"]:
        assert buyer_api.get("/api/v1/conversations", q=query).status_code == 200


# --- actions --------------------------------------------------------------------------------


def test_bulk_actions_are_all_or_nothing(buyer, seller, stranger, buyer_api):
    mine = seller_writes(seller, buyer)
    theirs = seller_writes(seller, stranger)
    response = buyer_api.act("star", mine.pk, theirs.pk)
    assert response.status_code == 404
    assert not Membership.objects.filter(starred_at__isnull=False).exists()
    assert buyer_api.act("star", 10**30).status_code in (404, 422)
    assert buyer_api.act("explode", mine.pk).json()["error"] == "invalid_action"
    assert buyer_api.act("star").json()["error"] == "no_conversations"


def test_actions_on_many_conversations_tell_my_other_tabs_and_nobody_else(buyer, seller, stranger, buyer_api):
    first, second = seller_writes(seller, buyer), talk(stranger, buyer)
    seller_events_before = len(logged_events(seller))

    response = buyer_api.act("archive", first.pk, second.pk)

    assert response.status_code == 200
    assert {c["id"] for c in response.json()} == {first.pk, second.pk}
    updates = logged_events(buyer, event_type="conversation.updated")
    assert {e["conversation_id"] for e in updates} == {first.pk, second.pk}
    assert all(e["archived"] for e in updates)
    assert len(logged_events(seller)) == seller_events_before


def test_mark_unread_then_read_by_hand_leaves_the_other_persons_seen_alone(buyer, seller, buyer_api):
    conversation = seller_writes(seller, buyer)
    services.mark_read(user=buyer, conversation=conversation)
    seen_by_buyer = (
        Api(seller).get(f"/api/v1/conversations/{conversation.pk}").json()["other_last_read_message_id"]
    )

    assert buyer_api.act("mark_unread", conversation.pk).json()[0]["unread_count"] == 1
    assert buyer_api.ids(filter="unread") == [conversation.pk]
    seller_view = Api(seller).get(f"/api/v1/conversations/{conversation.pk}").json()
    assert seller_view["other_last_read_message_id"] == seen_by_buyer

    assert buyer_api.act("mark_read", conversation.pk).json()[0]["unread_count"] == 0
    assert buyer_api.ids(filter="unread") == []


# --- labels ---------------------------------------------------------------------------------


def test_labels_are_created_applied_filtered_renamed_recoloured_and_deleted(
    buyer, seller, stranger, buyer_api
):
    first, second = seller_writes(seller, buyer), talk(stranger, buyer)
    created = buyer_api.post("/api/v1/labels", {"name": "Logo project", "color": "#1a7f5a"})
    assert created.status_code == 201
    label = created.json()
    assert label == {"id": label["id"], "name": "Logo project", "color": "#1a7f5a", "shared": False}

    buyer_api.act("add_label", first.pk, second.pk, label_id=label["id"])
    buyer_api.act("remove_label", second.pk, label_id=label["id"])
    assert buyer_api.ids(label=label["id"]) == [first.pk]
    assert buyer_api.get("/api/v1/conversations/counts").json()["labels"] == {str(label["id"]): 1}
    assert buyer_api.get(f"/api/v1/conversations/{first.pk}").json()["labels"] == [label["id"]]

    renamed = buyer_api.patch(f"/api/v1/labels/{label['id']}", {"name": "Logo", "color": "#000000"}).json()
    assert (renamed["name"], renamed["color"]) == ("Logo", "#000000")
    assert [e["type"] for e in logged_events(buyer)].count("labels.updated") == 2

    assert buyer_api.delete(f"/api/v1/labels/{label['id']}").status_code == 204
    assert buyer_api.get(f"/api/v1/conversations/{first.pk}").json()["labels"] == []
    assert buyer_api.get("/api/v1/labels").json() == [
        {"id": Label.objects.get(user=None).pk, "name": "Follow-up", "color": "#d97706", "shared": True}
    ]


def test_follow_up_is_a_label_everyone_has_and_nobody_can_change(buyer, seller, stranger):
    conversation = seller_writes(seller, buyer)
    follow_up = services.follow_up_label()
    Api(buyer).act("add_label", conversation.pk, label_id=follow_up.pk)
    assert Api(buyer).ids(filter="follow_up") == [conversation.pk]
    assert Api(seller).ids(filter="follow_up") == []  # my label on my side only

    assert (
        Api(buyer).patch(f"/api/v1/labels/{follow_up.pk}", {"name": "Later"}).json()["error"]
        == "shared_label"
    )
    assert Api(buyer).delete(f"/api/v1/labels/{follow_up.pk}").status_code == 403
    assert Label.objects.filter(pk=follow_up.pk, name="Follow-up").exists()


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"name": ""}, 422, "invalid_label"),
        ({"name": "   "}, 422, "invalid_label"),
        ({"name": "x" * 41}, 422, "invalid_label"),
        ({"name": "x" * 10_000}, 422, "invalid_input"),
        ({"name": "Urgent"}, 409, "label_exists"),
        ({"name": "URGENT"}, 409, "label_exists"),
        ({"name": "follow-up"}, 409, "label_exists"),
        ({"name": "Fine", "color": "red"}, 422, "invalid_color"),
        ({"name": "Fine", "color": "#12345g"}, 422, "invalid_color"),
    ],
)
def test_bad_label_input_is_refused_clearly_and_changes_nothing(buyer, buyer_api, payload, status, code):
    services.follow_up_label()
    services.create_label(user=buyer, name="Urgent")
    before = list(Label.objects.values_list("pk", "name", "color"))

    response = buyer_api.post("/api/v1/labels", payload)

    assert (response.status_code, response.json()["error"]) == (status, code)
    assert list(Label.objects.values_list("pk", "name", "color")) == before


def test_someone_elses_label_is_not_found(buyer, seller, buyer_api):
    theirs = services.create_label(user=seller, name="Private")
    conversation = seller_writes(seller, buyer)
    assert buyer_api.patch(f"/api/v1/labels/{theirs.pk}", {"name": "Mine"}).status_code == 404
    assert buyer_api.delete(f"/api/v1/labels/{theirs.pk}").status_code == 404
    assert buyer_api.act("add_label", conversation.pk, label_id=theirs.pk).status_code == 404
    assert buyer_api.get("/api/v1/conversations", label=theirs.pk).status_code == 404


# --- blocking -------------------------------------------------------------------------------


def test_a_blocked_user_is_refused_with_a_reason_and_nothing_is_stored(buyer, seller, buyer_api):
    conversation = seller_writes(seller, buyer)
    make_completed_order(buyer, seller)
    assert buyer_api.post("/api/v1/blocks", {"username": "Seller"}).status_code == 204
    messages_before = Message.objects.count()

    refused = Api(seller).post(f"/api/v1/conversations/{conversation.pk}/messages", {"body": "Hello?"})
    assert refused.status_code == 403
    assert refused.json()["error"] == "blocked_by_recipient"
    assert "blocked" in refused.json()["detail"]
    mine = buyer_api.post(f"/api/v1/conversations/{conversation.pk}/messages", {"body": "One more thing"})
    assert mine.json()["error"] == "recipient_blocked"
    assert Message.objects.count() == messages_before

    assert buyer_api.delete("/api/v1/blocks/seller").status_code == 204
    again = Api(seller).post(f"/api/v1/conversations/{conversation.pk}/messages", {"body": "Hello?"})
    assert again.status_code == 201


def test_blocking_needs_a_conversation_and_is_not_for_yourself(buyer, stranger, buyer_api):
    assert buyer_api.post("/api/v1/blocks", {"username": "stranger"}).status_code == 404
    assert buyer_api.post("/api/v1/blocks", {"username": "nobody\x00"}).status_code == 422
    with pytest.raises(InvalidInput):
        services.block_user(blocker=buyer, blocked=buyer)
    assert not Block.objects.exists()


def test_blocking_is_allowed_once_an_order_between_the_two_is_completed(buyer, seller, buyer_api):
    seller_writes(seller, buyer)

    response = buyer_api.post("/api/v1/blocks", {"username": "seller"})

    assert response.status_code == 403
    assert response.json() == {
        "error": "block_not_allowed",
        "detail": "You can block someone once an order between you is completed.",
    }
    assert not Block.objects.exists()
    make_completed_order(buyer, seller)
    assert buyer_api.post("/api/v1/blocks", {"username": "seller"}).status_code == 204


# --- scale ----------------------------------------------------------------------------------


@pytest.mark.parametrize("filter_name", ["all", "unread", "needs_reply", "starred", "follow_up"])
def test_each_filter_costs_the_same_queries_at_10_and_1000_conversations(buyer, filter_name):
    label = services.follow_up_label()

    def star_and_label_everything():
        ids = list(buyer.memberships.values_list("conversation_id", flat=True))
        for chunk in range(0, len(ids), 100):
            for action in ("star", "add_label"):
                services.file_conversations(
                    user=buyer, conversation_ids=ids[chunk : chunk + 100], action=action, label=label
                )

    def page_and_counts():
        with CaptureQueriesContext(connection) as queries:
            page = selectors.inbox_page(user=buyer, filter_name=filter_name, limit=50)
            selectors.filter_counts(user=buyer)
        return len(queries), page

    make_conversations(buyer, 10)
    star_and_label_everything()
    at_10, small = page_and_counts()
    make_conversations(buyer, 990, start=10)
    star_and_label_everything()
    at_1000, large = page_and_counts()

    assert (len(small.items), len(large.items)) == (10, 50)
    assert at_10 == at_1000
