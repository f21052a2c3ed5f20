"""Full-text search over a user's own messages: the selector (inbox.search), the API
(GET /api/v1/search), the results page (/inbox/search/) and the conversation page opened at a hit.

Runs on SQLite (the fallback: every word must appear) and on PostgreSQL (websearch_to_tsquery
over the GIN index, which a test proves with EXPLAIN)."""

import re
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox.models import Message
from inbox.search import MAX_QUERY_LENGTH, SnippetPart, build_snippet, search_messages
from inbox.selectors import conversation_for_user, thread_page
from inbox.services import delete_message, edit_message, get_or_create_conversation, send_message
from marketplace.errors import InvalidInput, NotFound
from tests.conftest import service_unavailable
from tests.factories import bearer_headers, buyer_opens_conversation

SCRIPT = "<script>alert(1)</script>"
SCRIPT_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"

# Strings a search box receives from people and from scanners. Each gets results or a clear 4xx.
AWKWARD_QUERIES = [
    '"',
    '"unclosed phrase',
    '""',
    "&|!:*<>()-",
    "invoice & | ! : * < > ( ) -",
    "a & b | !c",
    "(invoice)",
    "invoice:*",
    "invoice <-> attached",
    "-",
    "--invoice",
    "-invoice",
    "or",
    "or or or",
    "invoice or",
    "'; DROP TABLE inbox_message; --",
    "1' OR '1'='1",
    "invoice\x00",
    "\x00",
    "%",
    "_",
    "\\",
    "\\'",
    "ünïcödé 日本語 🙂 العربية",
    "\u200b",
    "\t\n invoice \r",
    "a" * MAX_QUERY_LENGTH,
    "<script>",
]


# --- helpers -------------------------------------------------------------------------------


def say(sender, conversation, body: str) -> Message:
    return send_message(sender=sender, conversation=conversation, body=body)[0]


def hit_ids(page) -> list[int]:
    return [hit.message.pk for hit in page.items]


def search_ids(user, query, **kwargs) -> list[int]:
    return hit_ids(search_messages(user=user, query=query, **kwargs))


def walk(user, query, *, limit) -> tuple[list[int], int]:
    ids, cursor, pages = [], None, 0
    while True:
        page = search_messages(user=user, query=query, cursor=cursor, limit=limit)
        pages += 1
        ids.extend(hit_ids(page))
        if page.next_cursor is None:
            return ids, pages
        cursor = page.next_cursor
        assert pages < 100


def snippet_text(parts) -> str:
    return "".join(part.text if isinstance(part, SnippetPart) else part["text"] for part in parts)


def api(user=None) -> tuple[Client, dict]:
    return Client(), (bearer_headers(user) if user is not None else {})


def api_search(user, **params):
    client, headers = api(user)
    response = client.get("/api/v1/search", params, **headers)
    assert response.status_code < 500, response.content
    return response


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_html(client, path, params=None, *, status=200) -> str:
    response = client.get(path, params or {})
    assert response.status_code == status, response.content[:500]
    return response.content.decode()


@pytest.fixture
def chat(buyer, seller):
    """A conversation between buyer and seller with a few messages; returns (conversation, messages)."""
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    messages = {
        "hello": say(buyer, conversation, "Hello Sam, I love your logo gig"),
        "invoice_buyer": say(buyer, conversation, "Could you send the invoice? It should be attached"),
        "invoice_seller": say(seller, conversation, "Invoice sent, have a look"),
        "other": say(seller, conversation, "Anything else I can do?"),
    }
    return conversation, messages


# --- the selector --------------------------------------------------------------------------


def test_finds_both_participants_messages_newest_first_with_the_other_person(buyer, seller, chat):
    conversation, messages = chat

    page = search_messages(user=buyer, query="invoice")

    assert hit_ids(page) == [messages["invoice_seller"].pk, messages["invoice_buyer"].pk]
    assert page.next_cursor is None
    for hit in page.items:
        assert hit.conversation_id == conversation.pk
        assert hit.other_user == seller
        assert any(part.match and part.text.lower() == "invoice" for part in hit.snippet)
    # The seller searches the same conversation and sees the buyer as the other person.
    seller_page = search_messages(user=seller, query="INVOICE")
    assert hit_ids(seller_page) == hit_ids(page)
    assert {hit.other_user for hit in seller_page.items} == {buyer}


def test_every_word_must_appear_and_a_minus_word_must_not(buyer, chat):
    _conversation, messages = chat

    assert search_ids(buyer, "invoice attached") == [messages["invoice_buyer"].pk]
    assert search_ids(buyer, "attached invoice") == [messages["invoice_buyer"].pk]
    assert search_ids(buyer, "invoice -attached") == [messages["invoice_seller"].pk]
    assert search_ids(buyer, "invoice unicorn") == []
    assert search_ids(buyer, "logo") == [messages["hello"].pk]


def test_never_finds_messages_of_other_peoples_conversations(buyer, seller, stranger, chat):
    theirs = get_or_create_conversation(user=seller, other_user=stranger)
    secret = say(stranger, theirs, "Here is my invoice for the other project")

    assert secret.pk not in search_ids(buyer, "invoice")
    assert search_ids(stranger, "invoice") == [secret.pk]
    assert secret.pk in search_ids(seller, "invoice")


def test_a_deleted_message_is_never_found_and_an_edit_is_found_by_its_new_text(buyer, seller, chat):
    _conversation, messages = chat
    delete_message(user=seller, message=messages["invoice_seller"])
    edit_message(user=buyer, message=messages["hello"], body="Hello Sam, about the banner")

    for user in (buyer, seller):
        assert search_ids(user, "invoice") == [messages["invoice_buyer"].pk]
        assert search_ids(user, "logo") == []
        assert search_ids(user, "banner") == [messages["hello"].pk]


def test_a_message_held_for_review_is_found_only_by_its_sender(buyer, seller, chat):
    _conversation, messages = chat
    Message.objects.filter(pk=messages["invoice_seller"].pk).update(status=Message.Status.HELD)

    assert search_ids(seller, "invoice") == [messages["invoice_seller"].pk, messages["invoice_buyer"].pk]
    assert search_ids(buyer, "invoice") == [messages["invoice_buyer"].pk]


def test_conversations_the_user_filed_away_are_still_searched(buyer, seller, chat):
    from inbox.services import file_conversations

    conversation, messages = chat
    file_conversations(user=buyer, conversation_ids=[conversation.pk], action="delete")

    assert messages["invoice_buyer"].pk in search_ids(buyer, "invoice")


def test_pages_walk_every_match_once_newest_first_even_when_times_tie(buyer, seller):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    ids = [say(seller if n % 2 else buyer, conversation, f"quote number {n}").pk for n in range(23)]
    say(buyer, conversation, "not this one")
    expected = sorted(ids, reverse=True)

    walked, pages = walk(buyer, "quote", limit=5)
    assert walked == expected
    assert pages == 5

    # Ties on created_at are broken by id, without gaps or duplicates.
    Message.objects.filter(pk__in=ids[:12]).update(created_at=timezone.now() - timedelta(days=1))
    walked, _pages = walk(buyer, "quote", limit=4)
    assert sorted(walked, reverse=True) == expected
    assert len(set(walked)) == len(expected)


def test_a_page_ending_exactly_at_the_limit_has_no_next_cursor(buyer, seller):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    for n in range(3):
        say(buyer, conversation, f"quote {n}")

    page = search_messages(user=buyer, query="quote", limit=3)
    assert len(page.items) == 3
    assert page.next_cursor is None


@pytest.mark.parametrize("query", ["", "   ", "\x00", "\t\n", None])
def test_an_empty_query_is_refused(buyer, query):
    with pytest.raises(InvalidInput) as raised:
        search_messages(user=buyer, query=query)
    assert raised.value.code == "empty_query"


@pytest.mark.parametrize("length", [MAX_QUERY_LENGTH + 1, 10_000])
def test_a_long_query_is_refused(buyer, length):
    with pytest.raises(InvalidInput) as raised:
        search_messages(user=buyer, query="a" * length)
    assert raised.value.code == "query_too_long"


def test_a_query_that_is_not_text_is_refused(buyer):
    with pytest.raises(InvalidInput) as raised:
        search_messages(user=buyer, query="invoice \ud800")
    assert raised.value.code == "invalid_query"


@pytest.mark.parametrize("cursor", ["garbage", "e30", "eyJhdCI6ICJ4In0", "W10"])
def test_a_cursor_the_server_did_not_hand_out_is_refused(buyer, chat, cursor):
    with pytest.raises(InvalidInput) as raised:
        search_messages(user=buyer, query="invoice", cursor=cursor)
    assert raised.value.code == "invalid_cursor"


@pytest.mark.parametrize("limit", [0, -1, 51])
def test_a_limit_out_of_range_is_refused(buyer, limit):
    with pytest.raises(InvalidInput):
        search_messages(user=buyer, query="invoice", limit=limit)


@pytest.mark.parametrize("query", AWKWARD_QUERIES)
def test_awkward_queries_give_results_or_invalid_input(buyer, chat, query):
    try:
        page = search_messages(user=buyer, query=query)
    except InvalidInput as refused:
        assert refused.status == 422
    else:
        assert isinstance(page.items, list)


@pytest.mark.parametrize("query", ["(invoice)", "invoice:*", "invoice\x00", "\t\n invoice \r", "INVOICE"])
def test_punctuation_around_a_word_still_finds_it(buyer, chat, query):
    _conversation, messages = chat
    assert search_ids(buyer, query) == [messages["invoice_seller"].pk, messages["invoice_buyer"].pk]


def test_a_query_made_only_of_operators_or_exclusions_finds_nothing(buyer, chat):
    for query in ("&|!", "-invoice", '"', "or"):
        assert search_ids(buyer, query) == []
    # ... and the SQL-looking query is only words.
    assert Message.objects.count() == 4
    assert search_ids(buyer, "'; DROP TABLE inbox_message; --") == []


# --- snippets ------------------------------------------------------------------------------


def test_a_snippet_is_plain_text_around_the_first_match_with_matches_marked(buyer, seller):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    body = ("lorem ipsum " * 30) + "the Invoice is here, invoice number 7 " + ("dolor sit " * 30)
    message = say(buyer, conversation, body)

    (hit,) = search_messages(user=buyer, query="invoice").items

    assert hit.message.pk == message.pk
    assert hit.snippet[0] == SnippetPart("… ", False)
    assert hit.snippet[-1] == SnippetPart(" …", False)
    assert [part.text for part in hit.snippet if part.match] == ["Invoice", "invoice"]
    text = snippet_text(hit.snippet).strip("… ")
    assert text in body
    assert len(text) <= 200


def test_a_snippet_keeps_markup_as_text(buyer, seller):
    conversation = buyer_opens_conversation(buyer, seller)
    say(seller, conversation, f"Look {SCRIPT} at the <b>invoice</b> & pay")

    (hit,) = search_messages(user=buyer, query="invoice").items

    assert snippet_text(hit.snippet) == f"Look {SCRIPT} at the <b>invoice</b> & pay"
    assert [part.text for part in hit.snippet if part.match] == ["invoice"]


@pytest.mark.parametrize(
    ("body", "words", "whole_words", "expected"),
    [
        ("short note", ["note"], True, [("short ", False), ("note", True)]),
        ("Über ÉCOLE", ["école"], True, [("Über ", False), ("ÉCOLE", True)]),
        ("a\n\n  b  invoice", ["invoice"], True, [("a b ", False), ("invoice", True)]),
        ("invoices and invoice", ["invoice"], True, [("invoices and ", False), ("invoice", True)]),
        ("foo_bar", ["foo"], True, [("foo", True), ("_bar", False)]),
        ("invoices", ["invoice"], False, [("invoice", True), ("s", False)]),
        ("no match", [], True, [("no match", False)]),
        ("x.*+?[", [".*+?["], False, [("x", False), (".*+?[", True)]),
    ],
)
def test_build_snippet(body, words, whole_words, expected):
    assert build_snippet(body, words, whole_words=whole_words) == [SnippetPart(*part) for part in expected]


# --- fixed number of queries -----------------------------------------------------------------


def count_queries(read) -> int:
    with CaptureQueriesContext(connection) as context:
        read()
    return len(context.captured_queries)


def test_search_costs_the_same_queries_at_10_and_200_matches(buyer, seller, stranger):
    first = buyer_opens_conversation(buyer, seller)
    second = get_or_create_conversation(user=buyer, other_user=stranger)
    reply_to = say(seller, first, "the original question")

    def add(count):
        for n in range(count):
            conversation = first if n % 2 else second
            send_message(
                sender=buyer,
                conversation=conversation,
                body=f"budget question {n}",
                reply_to_id=reply_to.pk if conversation == first else None,
            )

    add(10)
    client, headers = api(buyer)
    client.get("/api/v1/search", {"q": "warm up"}, **headers)  # the token's first use is recorded once

    def read_all():
        search_messages(user=buyer, query="budget", limit=50)
        assert client.get("/api/v1/search", {"q": "budget"}, **headers).status_code == 200

    at_10 = count_queries(read_all)
    add(190)
    at_200 = count_queries(read_all)

    assert len(search_messages(user=buyer, query="budget", limit=50).items) == 50
    assert at_10 == at_200


# --- PostgreSQL: the GIN index is used ---------------------------------------------------------


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        service_unavailable(f"needs PostgreSQL (DATABASE_URL); this run uses {connection.vendor}")


@pytest.mark.needs_postgres
def test_the_search_query_uses_the_gin_index(postgres, buyer, seller):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'message_body_search'")
        (definition,) = cursor.fetchone()
    assert "USING gin" in definition
    assert "to_tsvector('simple'::regconfig, COALESCE(body, ''::text))" in definition

    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    say(buyer, conversation, "the rare word zanzibar")
    # A long history (written directly: 3,000 sends through the service would take a while), so
    # that reading the conversation's messages one by one costs more than the index.
    Message.objects.bulk_create(
        Message(conversation=conversation, sender=seller, body=f"ordinary message {n}", client_id=uuid4())
        for n in range(3000)
    )

    with CaptureQueriesContext(connection) as context:
        (_hit,) = search_messages(user=buyer, query="zanzibar").items
    search_sql = context.captured_queries[0]["sql"]
    assert "websearch_to_tsquery" in search_sql
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE inbox_message")
        # Only inside the test's transaction: never choose a sequential scan.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + search_sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "message_body_search" in plan, plan
    assert "Bitmap Index Scan" in plan, plan


@pytest.mark.needs_postgres
def test_postgres_reads_the_query_like_a_web_search(postgres, buyer, seller, chat):
    _conversation, messages = chat
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    phrase = say(buyer, conversation, "we need a big deal today")
    say(buyer, conversation, "a deal that is big")

    assert search_ids(buyer, '"big deal"') == [phrase.pk]
    assert search_ids(buyer, "logo or anything") == [messages["other"].pk, messages["hello"].pk]


# --- the API -----------------------------------------------------------------------------------


def test_api_search_returns_hits_with_message_conversation_other_user_and_snippet(buyer, seller, chat):
    conversation, messages = chat

    response = api_search(buyer, q="invoice", limit=1)

    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"]
    (item,) = body["items"]
    assert set(item) == {"message", "conversation_id", "other_user", "snippet"}
    assert item["message"]["id"] == messages["invoice_seller"].pk
    assert item["message"]["sender"] == "seller"
    assert item["message"]["body"] == "Invoice sent, have a look"
    assert item["conversation_id"] == conversation.pk
    assert item["other_user"]["username"] == "seller"
    assert item["other_user"]["display_name"] == "Sam Seller"
    assert item["snippet"] == [
        {"text": "Invoice", "match": True},
        {"text": " sent, have a look", "match": False},
    ]

    following = api_search(buyer, q="invoice", limit=1, cursor=body["next_cursor"]).json()
    assert [i["message"]["id"] for i in following["items"]] == [messages["invoice_buyer"].pk]
    assert following["next_cursor"] is None


def test_api_search_snippets_are_json_text_not_html(buyer, seller):
    conversation = buyer_opens_conversation(buyer, seller)
    say(seller, conversation, f"{SCRIPT} invoice")

    (item,) = api_search(buyer, q="invoice").json()["items"]

    assert snippet_text(item["snippet"]) == f"{SCRIPT} invoice"


def test_api_search_needs_authentication():
    response = api_search(None, q="invoice")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "invalid_input"),  # q is required
        ({"q": ""}, "empty_query"),
        ({"q": "   "}, "empty_query"),
        ({"q": "a" * (MAX_QUERY_LENGTH + 1)}, "query_too_long"),
        ({"q": "a" * 10_001}, "invalid_input"),
        ({"q": "invoice", "cursor": "garbage"}, "invalid_cursor"),
        ({"q": "invoice", "cursor": "x" * 201}, "invalid_input"),
        ({"q": "invoice", "limit": 0}, "invalid_limit"),
        ({"q": "invoice", "limit": 51}, "invalid_limit"),
        ({"q": "invoice", "limit": "many"}, "invalid_input"),
    ],
)
def test_api_search_bad_input_is_a_clear_4xx(buyer, params, code):
    response = api_search(buyer, **params)

    assert response.status_code == 422, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"] == code
    assert response.json()["detail"]


@pytest.mark.parametrize("query", AWKWARD_QUERIES)
def test_api_search_awkward_queries_give_results_or_a_4xx_never_a_5xx(buyer, chat, query):
    response = api_search(buyer, q=query)
    assert response.status_code in (200, 422), response.content
    if response.status_code == 200:
        assert isinstance(response.json()["items"], list)


def test_api_search_survives_bytes_that_are_not_utf8(buyer, chat):
    client, headers = api(buyer)
    for raw in ("%ED%A0%80", "%FF%FE", "%C0%AF", "%00invoice"):
        response = client.get(f"/api/v1/search?q={raw}", **headers)
        assert response.status_code in (200, 422), (raw, response.content)


# --- the results page --------------------------------------------------------------------------


def test_search_page_lists_hits_with_person_time_in_viewer_zone_snippet_and_link(buyer, seller, chat):
    conversation, messages = chat
    target = messages["invoice_seller"]
    # 23:30 UTC on the 15th is 00:30 on the 16th for the buyer (Europe/Paris).
    Message.objects.filter(pk=target.pk).update(created_at=datetime(2026, 1, 15, 23, 30, tzinfo=UTC))

    html = page_html(browser(buyer), "/inbox/search/", {"q": "invoice"})

    link = f'href="/inbox/{conversation.pk}/?message={target.pk}#m-{target.pk}"'
    assert link in html
    assert "Sam Seller" in html
    assert "Jan 16, 2026 00:30" in html
    assert "<mark>Invoice</mark> sent, have a look" in html
    # Newest first: the buyer's message (now) before the one moved back to January.
    assert html.index(f'data-message-id="{messages["invoice_buyer"].pk}"') < html.index(
        f'data-message-id="{target.pk}"'
    )


def test_search_page_shows_script_in_messages_escaped(buyer, seller):
    conversation = buyer_opens_conversation(buyer, seller)
    say(seller, conversation, f"Look {SCRIPT} at the <b>invoice</b>")

    html = page_html(browser(buyer), "/inbox/search/", {"q": "invoice"})

    assert SCRIPT not in html
    assert "<b>invoice" not in html
    assert f"Look {SCRIPT_ESCAPED} at the &lt;b&gt;<mark>invoice</mark>&lt;/b&gt;" in html


def test_search_page_escapes_the_query_it_shows(buyer, chat):
    html = page_html(browser(buyer), "/inbox/search/", {"q": f'"><img src=x onerror=alert(1)> {SCRIPT}'})
    assert "<img" not in html
    assert SCRIPT not in html


def test_search_page_without_a_query_shows_the_form(buyer):
    html = page_html(browser(buyer), "/inbox/search/")
    assert 'name="q"' in html
    assert "search-results" not in html


def test_search_page_pages_to_older_results(buyer, seller):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    ids = [say(buyer, conversation, f"quote {n}").pk for n in range(25)]
    client = browser(buyer)

    first = page_html(client, "/inbox/search/", {"q": "quote"})
    cursor = re.search(r'href="/inbox/search/\?q=quote&amp;cursor=([^"]+)"', first).group(1)
    second = page_html(client, "/inbox/search/", {"q": "quote", "cursor": cursor})

    shown = [
        int(found) for found in re.findall(r'<li class="search-hit" data-message-id="(\d+)"', first + second)
    ]
    assert shown == sorted(ids, reverse=True)
    assert "Older results" not in second


@pytest.mark.parametrize(
    "params",
    [
        {"q": "a" * (MAX_QUERY_LENGTH + 1)},
        {"q": "a" * 20_000},
        {"q": "invoice", "cursor": "garbage"},
    ],
)
def test_search_page_bad_input_is_a_4xx_with_a_message(buyer, params):
    html = page_html(browser(buyer), "/inbox/search/", params, status=422)
    assert 'class="form-error"' in html


@pytest.mark.parametrize("query", AWKWARD_QUERIES)
def test_search_page_awkward_queries_never_5xx(buyer, chat, query):
    response = browser(buyer).get("/inbox/search/", {"q": query})
    assert response.status_code in (200, 422), response.content[:500]


def test_search_page_needs_login(db):
    response = Client().get("/inbox/search/", {"q": "invoice"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- opening the conversation at a hit ---------------------------------------------------------


def thread_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'<li class="message[^"]*"[^>]*data-message-id="(\d+)"', html)]


def highlighted_ids(html: str) -> list[int]:
    return [
        int(found) for found in re.findall(r'<li class="message[^"]*\bhighlighted\b[^"]*" id="m-(\d+)"', html)
    ]


def test_the_conversation_opens_at_an_old_message_and_highlights_it(buyer, seller):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    old = say(buyer, conversation, "the very old invoice")
    later = [say(seller, conversation, f"later {n}").pk for n in range(120)]
    client = browser(buyer)

    plain = page_html(client, f"/inbox/{conversation.pk}/")
    assert old.pk not in thread_ids(plain)
    assert highlighted_ids(plain) == []

    html = page_html(client, f"/inbox/{conversation.pk}/", {"message": old.pk})
    shown = thread_ids(html)
    assert old.pk in shown
    assert shown == sorted(shown)  # oldest first, as the thread always shows
    assert shown == [old.pk, *later[:25]]
    assert highlighted_ids(html) == [old.pk]


@pytest.mark.parametrize("message", ["other", "garbage", "-1", "99999999999999999999999"])
def test_a_message_param_not_in_the_conversation_opens_it_as_usual(buyer, seller, stranger, message):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    mine = [say(buyer, conversation, f"note {n}").pk for n in range(3)]
    elsewhere = say(stranger, get_or_create_conversation(user=stranger, other_user=seller), "not yours")
    value = elsewhere.pk if message == "other" else message

    html = page_html(browser(buyer), f"/inbox/{conversation.pk}/", {"message": value})

    assert thread_ids(html) == mine
    assert highlighted_ids(html) == []
    assert "not yours" not in html


def test_thread_page_around_a_message(buyer, seller, stranger):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    ids = [say(buyer, conversation, f"m{n}").pk for n in range(30)]
    membership = conversation_for_user(user=buyer, conversation_id=conversation.pk)

    page = thread_page(membership=membership, around=ids[10], limit=6)
    assert [m.pk for m in page.items] == [ids[13], ids[12], ids[11], ids[10], ids[9], ids[8]]
    assert page.next_cursor == str(ids[8])
    assert page.newer_cursor == ids[13]
    # The cursors continue both ways without gaps.
    assert [m.pk for m in thread_page(membership=membership, cursor=page.next_cursor, limit=1).items] == [
        ids[7]
    ]
    assert [m.pk for m in thread_page(membership=membership, after=page.newer_cursor, limit=1).items] == [
        ids[14]
    ]

    # A recent message: the usual newest page.
    recent = thread_page(membership=membership, around=ids[28], limit=6)
    assert [m.pk for m in recent.items] == [m.pk for m in thread_page(membership=membership, limit=6).items]
    assert recent.newer_cursor is None

    # The oldest message, with a page of one.
    oldest = thread_page(membership=membership, around=ids[0], limit=1)
    assert [m.pk for m in oldest.items] == [ids[0]]
    assert (oldest.next_cursor, oldest.newer_cursor) == (None, ids[0])

    elsewhere = say(stranger, get_or_create_conversation(user=stranger, other_user=seller), "x")
    for foreign in (elsewhere.pk, 0, -5, 2**70, "abc"):
        with pytest.raises(NotFound):
            thread_page(membership=membership, around=foreign)


def test_thread_page_around_costs_the_same_queries_at_10_and_200_messages(buyer, seller):
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    target = say(buyer, conversation, "target")
    membership = conversation_for_user(user=buyer, conversation_id=conversation.pk)
    for n in range(10):
        say(seller, conversation, f"after {n}")
    at_10 = count_queries(lambda: thread_page(membership=membership, around=target.pk))
    for n in range(190):
        say(seller, conversation, f"after {n}")
    at_200 = count_queries(lambda: thread_page(membership=membership, around=target.pk))
    assert at_10 == at_200 == 4  # each side of the target, and the files of each side
