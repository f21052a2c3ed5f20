"""Full-text search over a user's own message history (reads only, like selectors).

PostgreSQL: `websearch_to_tsquery` with the "simple" configuration (the marketplace is
multilingual, so no language's stemming or stop words), over the GIN index of migration 0004,
whose expression is exactly `SearchVector("body", config="simple")`. SQLite (development): every
word of the query must appear in the message, case-insensitively.

Snippets are a list of `SnippetPart(text, match)`, never HTML: the text is the user's, so
templates escape it and put `<mark>` around the parts that matched.
"""

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchVector
from django.db import connection
from django.db.models import Q

from marketplace.errors import InvalidInput

from .models import Membership, Message
from .selectors import Page, _clamp_limit, _decode_cursor, _encode_cursor

MAX_QUERY_LENGTH = 200
SEARCH_PAGE_MAX = 50
SEARCH_CONFIG = "simple"
SNIPPET_LENGTH = 160  # characters of the message shown around the first match
SNIPPET_LEAD = 50  # of which at most this many come before the match
ELLIPSIS = "…"

_WORD = re.compile(r"\w+")
_SPACES = re.compile(r"\s+")


class SnippetPart(NamedTuple):
    text: str
    match: bool


@dataclass
class SearchHit:
    message: Message
    conversation_id: int
    other_user: object  # the other participant (User, with profile loaded)
    snippet: list[SnippetPart]


def message_search_vector() -> SearchVector:
    """The indexed expression (migration 0004 builds the GIN index from this same call)."""
    return SearchVector("body", config=SEARCH_CONFIG)


def clean_search_query(query) -> str:
    """The query as searched, or InvalidInput: empty, too long, or not text."""
    if not isinstance(query, str):
        raise InvalidInput("Type something to search for.", code="empty_query")
    if len(query) > MAX_QUERY_LENGTH:  # as sent: the limit a client sees
        raise InvalidInput(f"Search for at most {MAX_QUERY_LENGTH} characters.", code="query_too_long")
    query = query.replace("\x00", "").strip()
    if not query:
        raise InvalidInput("Type something to search for.", code="empty_query")
    try:
        query.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no database accepts it
        raise InvalidInput(
            "The search contains characters that are not text.", code="invalid_query"
        ) from None
    return query


def search_terms(query: str) -> tuple[list[str], list[str]]:
    """The words a message must contain and the ones it must not (`-word`), as the fallback
    reads them. `or` between words is PostgreSQL's operator; the fallback ignores it."""
    required, excluded = [], []
    for term in query.split():
        if term.lower() == "or":
            continue
        words = _WORD.findall(term)
        (excluded if term.startswith("-") else required).extend(words)
    return required, excluded


def _read_cursor(cursor: str) -> tuple[datetime, int]:
    values = _decode_cursor(cursor)
    try:
        return datetime.fromisoformat(values["at"]), int(values["id"])
    except (KeyError, TypeError, ValueError):
        raise InvalidInput("The cursor is not one this server handed out.", code="invalid_cursor") from None


def search_messages(*, user, query, cursor: str | None = None, limit: int | None = None) -> Page:
    """Messages of the user's conversations (both participants', archived, spam and deleted-from-
    inbox conversations included) that match `query`, newest first, keyset-paginated. A deleted
    message is never found (its text is kept only for admins); held or rejected messages are
    found only by their sender. Two queries whatever the number of matches."""
    limit = _clamp_limit(limit, default=20, maximum=SEARCH_PAGE_MAX)
    query = clean_search_query(query)
    position = _read_cursor(cursor) if cursor else None  # refused even when nothing is searched
    required, excluded = search_terms(query)
    if not required:
        # Only punctuation or only exclusions: nothing to look for (and no scan of everything).
        return Page(items=[], next_cursor=None)

    messages = (
        Message.objects.filter(
            conversation_id__in=Membership.objects.filter(user=user).values("conversation_id"),
            deleted_at__isnull=True,
        )
        .filter(Q(status=Message.Status.VISIBLE) | Q(sender=user))
        .select_related("sender", "reply_to__sender", "order")
        .prefetch_related("attachments")
    )
    marker = secrets.token_hex(6)
    start_sel, stop_sel = f"[{marker}[", f"]{marker}]"
    if connection.vendor == "postgresql":
        ts_query = SearchQuery(query, config=SEARCH_CONFIG, search_type="websearch")
        messages = (
            messages.alias(search=message_search_vector())
            .filter(search=ts_query)
            .annotate(
                headline=SearchHeadline(
                    "body", ts_query, config=SEARCH_CONFIG, start_sel=start_sel, stop_sel=stop_sel
                )
            )
        )
    else:
        for word in required:
            messages = messages.filter(body__icontains=word)
        for word in excluded:
            messages = messages.exclude(body__icontains=word)

    if position is not None:
        at, pk = position
        messages = messages.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=pk))
    rows = list(messages.order_by("-created_at", "-id")[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = _encode_cursor({"at": last.created_at.isoformat(), "id": last.pk})

    others = {}
    if rows:
        others = {
            membership.conversation_id: membership.other_user
            for membership in Membership.objects.filter(
                user=user, conversation_id__in={m.conversation_id for m in rows}
            ).select_related("other_user__profile")
        }
    hits = []
    for message in rows:
        if hasattr(message, "headline"):
            # PostgreSQL decided which words matched (phrases, `or`, the parser's idea of a
            # word); the snippet itself is cut from the body, because ts_headline drops whatever
            # looks like an HTML tag and the user must see what was written.
            matched = re.findall(re.escape(start_sel) + "(.*?)" + re.escape(stop_sel), message.headline, re.S)
            snippet = build_snippet(message.body, matched or required, whole_words=True)
        else:
            snippet = build_snippet(message.body, required, whole_words=False)
        hits.append(
            SearchHit(
                message=message,
                conversation_id=message.conversation_id,
                other_user=others[message.conversation_id],
                snippet=snippet,
            )
        )
    return Page(items=hits, next_cursor=next_cursor)


def build_snippet(body: str, words: list[str], *, whole_words: bool) -> list[SnippetPart]:
    """About SNIPPET_LENGTH characters of `body` around the first of `words`, split into parts
    that matched (case-insensitively) and parts that did not. Plain text, never markup. Whole
    words when asked, unless none is found that way (PostgreSQL's parser splits `a_b` in two)."""
    words = sorted({word for word in words if word}, key=len, reverse=True)
    pattern = first = None
    if words:
        alternatives = "|".join(re.escape(word) for word in words)
        pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)" if whole_words else alternatives, re.I)
        first = pattern.search(body)
        if first is None and whole_words:
            pattern = re.compile(alternatives, re.I)
            first = pattern.search(body)

    start = 0
    if first and first.start() > SNIPPET_LEAD:
        start = first.start() - SNIPPET_LEAD
        space = body.find(" ", start, first.start())
        start = space + 1 if space != -1 else start
    end = min(len(body), start + SNIPPET_LENGTH)
    if first and end < first.end():
        end = first.end()
    if end < len(body):
        space = body.rfind(" ", max(start, first.end() if first else start), end)
        end = space if space != -1 else end

    excerpt = body[start:end]
    parts: list[SnippetPart] = []
    position = 0
    for found in pattern.finditer(excerpt) if pattern else ():
        if found.start() > position:
            parts.append(SnippetPart(excerpt[position : found.start()], False))
        parts.append(SnippetPart(found.group(), True))
        position = found.end()
    if position < len(excerpt):
        parts.append(SnippetPart(excerpt[position:], False))

    parts = [SnippetPart(_SPACES.sub(" ", part.text), part.match) for part in parts]
    if parts and not parts[0].match:
        parts[0] = SnippetPart(parts[0].text.lstrip(), False)
    if parts and not parts[-1].match:
        parts[-1] = SnippetPart(parts[-1].text.rstrip(), False)
    parts = [part for part in parts if part.text]
    if start > 0:
        parts.insert(0, SnippetPart(ELLIPSIS + " ", False))
    if end < len(body):
        parts.append(SnippetPart(" " + ELLIPSIS, False))
    return parts
