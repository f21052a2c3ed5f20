"""Reads and writes of the inbox at scale, on the dataset `seed_demo --messages` generated
(bench.seeding leaves it in the database; seeded here when missing).

Every page goes through the code path a user hits: the JSON API, in process, through Django's
test Client with a bearer token (middleware, authentication, selectors, serialisation). Its
baseline is the exact SQL that request ran (captured with CaptureQueriesContext), run raw with
EXPLAIN (ANALYZE): the sum of planning and execution time of all its statements, per sample.

Rows: inbox page (50 conversations) p99 <= 2.5x its raw SQL, with the same number of queries
for a user with 10 and one with 50+ conversations; history page at depth 100,000 against
depth 0 (p99 ratio <= 1.2); search for a rare term p99 <= 2x its raw SQL; a message sent
through inbox.services.send_message p50 <= 1.5x a bare INSERT + COMMIT; and the INSERT p99
with the GIN search index against without it (dropped inside a rolled-back transaction).
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid

from bench.stack import Context, Result, Row, log, manage, ratio, setup_django, summarize_ns

NAME = "queries"
TITLE = "Inbox, history and search pages and the message insert at 1M messages, against their raw SQL"

FULL_MESSAGES = 1_000_000
QUICK_MESSAGES = 50_000
FULL_DEPTH = 100_000
PAGE = 50
RARE_TERM = "zephyrquartz"
COMMON_TERM = "logo"
GIN_INDEX = "message_body_search"
TARGETS = {"inbox": 2.5, "history": 1.2, "search": 2.0, "insert": 1.5, "gin": 2.0}
_EXPLAINABLE = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.I)
_TIME = re.compile(r"(Planning|Execution) Time: ([\d.]+) ms")


def samples(ctx: Context) -> int:
    return 60 if ctx.quick else 200


def ensure_dataset(ctx: Context) -> int:
    """The generated dataset's size, seeding it first when missing or too small."""
    from inbox import bulk_seed
    from inbox.models import Message

    wanted = QUICK_MESSAGES if ctx.quick else FULL_MESSAGES
    present = Message.objects.filter(sender__in=bulk_seed.generated_users()).count()
    if present < wanted:
        log(f"queries: {present:,} generated messages in the database; seeding {wanted:,}")
        manage(ctx.env, "seed_demo", "--messages", str(wanted))
        present = Message.objects.filter(sender__in=bulk_seed.generated_users()).count()
    return present


class ApiUser:
    """Requests to the JSON API as one user, in process, with a bearer token."""

    def __init__(self, user):
        from django.test import Client

        from marketplace.accounts.services import issue_api_token

        _token, raw = issue_api_token(user=user)
        self.user = user
        self.client = Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}

    def get(self, path: str, **params) -> dict:
        response = self.client.get(f"/api/v1{path}", params, **self.headers)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.content[:300]!r}")
        return response.json()

    def timed(self, path: str, **params) -> int:
        started = time.perf_counter_ns()
        self.get(path, **params)
        return time.perf_counter_ns() - started

    def captured_sql(self, path: str, **params) -> list[str]:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        self.get(path, **params)  # first: a fresh token's one-off "last used" write is not the page's
        with CaptureQueriesContext(connection) as captured:
            self.get(path, **params)
        return [query["sql"] for query in captured.captured_queries]


def explain_ns(statements: list[str]) -> int:
    """Planning + execution time of the statements run raw with EXPLAIN (ANALYZE), summed, in
    ns. Inside a transaction rolled back: a write among them (a token's last use) changes nothing."""
    from django.db import connection, transaction

    total_ms = 0.0
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in statements:
            if not _EXPLAINABLE.match(sql):
                continue
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT TEXT) {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            total_ms += sum(float(ms) for _kind, ms in _TIME.findall(plan))
        transaction.set_rollback(True)
    return int(total_ms * 1e6)


def page_against_raw_sql(api: ApiUser, path: str, count: int, **params) -> dict:
    """Interleaved: the page through the API, then its SQL raw, `count` times each."""
    statements = api.captured_sql(path, **params)
    for _ in range(5):  # warm the caches and the plan
        api.get(path, **params)
        explain_ns(statements)
    page_ns, raw_ns = [], []
    for _ in range(count):
        page_ns.append(api.timed(path, **params))
        raw_ns.append(explain_ns(statements))
    page, raw = summarize_ns(page_ns), summarize_ns(raw_ns)
    return {
        "page_ms": page,
        "raw_sql_ms": raw,
        "queries": len(statements),
        "p99_ratio": ratio(page["p99"], raw["p99"]),
        "p50_ratio": ratio(page["p50"], raw["p50"]),
        "sql": statements,
    }


def _ms(summary: dict) -> str:
    return f"p50 {summary['p50']} ms, p99 {summary['p99']} ms"


def measure_inbox(ctx: Context, busy, light) -> tuple[Row, dict]:
    busy_api, light_api = ApiUser(busy), ApiUser(light)
    figures = page_against_raw_sql(busy_api, "/conversations", samples(ctx), limit=PAGE)
    figures["items"] = len(busy_api.get("/conversations", limit=PAGE)["items"])
    light_items = len(light_api.get("/conversations", limit=PAGE)["items"])
    light_queries = len(light_api.captured_sql("/conversations", limit=PAGE))
    figures["query_count"] = {f"{figures['items']} conversations": figures["queries"],
                              f"{light_items} conversations": light_queries}  # fmt: skip
    constant = light_queries == figures["queries"]
    met = constant and figures["p99_ratio"] is not None and figures["p99_ratio"] <= TARGETS["inbox"]
    measured = (
        f"{_ms(figures['page_ms'])} vs raw SQL {_ms(figures['raw_sql_ms'])}: p99 {figures['p99_ratio']}x; "
        f"{figures['queries']} queries for {figures['items']} conversations, "
        f"{light_queries} for {light_items}"
    )
    return Row(
        "inbox page (50 conversations, unread counts, last message) at 1M messages",
        f"p99 <= {TARGETS['inbox']}x its raw SQL (EXPLAIN ANALYZE); constant query count",
        measured,
        met,
        {k: v for k, v in figures.items() if k != "sql"},
    ), figures


def measure_history(ctx: Context, busy, deep_conversation_id: int, deep_messages: int) -> tuple[Row, dict]:
    from inbox.models import Message

    api = ApiUser(busy)
    depth = min(FULL_DEPTH, deep_messages - 2 * PAGE)
    before = (
        Message.objects.filter(conversation_id=deep_conversation_id)
        .order_by("-id")
        .values_list("id", flat=True)[depth - 1]
    )
    path = f"/conversations/{deep_conversation_id}/messages"
    shallow_params, deep_params = {"limit": PAGE}, {"limit": PAGE, "cursor": str(before)}
    deep_page = api.get(path, **deep_params)["items"]
    below = Message.objects.filter(conversation_id=deep_conversation_id, id__gte=deep_page[0]["id"]).count()
    for _ in range(5):
        api.get(path, **shallow_params)
        api.get(path, **deep_params)
    shallow_ns, deep_ns = [], []
    for _ in range(samples(ctx)):
        shallow_ns.append(api.timed(path, **shallow_params))
        deep_ns.append(api.timed(path, **deep_params))
    shallow, deep = summarize_ns(shallow_ns), summarize_ns(deep_ns)
    raw_deep = summarize_ns([explain_ns(api.captured_sql(path, **deep_params)) for _ in range(20)])
    p99_ratio = ratio(deep["p99"], shallow["p99"])
    figures = {
        "depth": depth,
        "first_message_rank": below,
        "depth_0_ms": shallow,
        "depth_ms": deep,
        "raw_sql_at_depth_ms": raw_deep,
        "p99_ratio": p99_ratio,
        "p50_ratio": ratio(deep["p50"], shallow["p50"]),
    }
    quick = "" if depth == FULL_DEPTH else f" (quick dataset: depth {depth:,})"
    return Row(
        "history page at depth 100,000 vs depth 0",
        f"p99 ratio <= {TARGETS['history']} (keyset)",
        f"depth 0 {_ms(shallow)}; depth {depth:,} {_ms(deep)}: p99 ratio {p99_ratio}{quick}",
        p99_ratio is not None and p99_ratio <= TARGETS["history"],
        figures,
    ), figures


def measure_search(ctx: Context, busy) -> tuple[Row, dict]:
    api = ApiUser(busy)
    hits = len(api.get("/search", q=RARE_TERM)["items"])
    figures = page_against_raw_sql(api, "/search", samples(ctx), q=RARE_TERM)
    figures["hits"] = hits
    common = page_against_raw_sql(api, "/search", max(20, samples(ctx) // 5), q=COMMON_TERM)
    figures["common_term"] = {k: v for k, v in common.items() if k != "sql"} | {"term": COMMON_TERM}
    met = figures["p99_ratio"] is not None and figures["p99_ratio"] <= TARGETS["search"]
    return Row(
        "search, rare term, 1M messages",
        f"p99 <= {TARGETS['search']}x its raw SQL (EXPLAIN ANALYZE)",
        f"{_ms(figures['page_ms'])} vs raw SQL {_ms(figures['raw_sql_ms'])}: p99 {figures['p99_ratio']}x "
        f"({hits} hits, {figures['queries']} queries); common term '{COMMON_TERM}' page "
        f"{_ms(common['page_ms'])}",
        met,
        {k: v for k, v in figures.items() if k != "sql"},
    ), figures


def bare_insert_ns(database_url: str, conversation_id: int, sender_id: int, count: int) -> list[int]:
    """psycopg INSERT ... RETURNING id + COMMIT into inbox_message (bench.baselines' statement)."""
    import psycopg

    from bench.baselines import INSERT_MESSAGE_SQL, SAMPLE_BODY

    sql = INSERT_MESSAGE_SQL.format(p="%s")
    timings = []
    with psycopg.connect(database_url) as db:
        for i in range(count + 10):
            started = time.perf_counter_ns()
            db.execute(sql, (conversation_id, sender_id, SAMPLE_BODY, uuid.uuid4(), dt.datetime.now(dt.UTC)))
            db.commit()
            if i >= 10:
                timings.append(time.perf_counter_ns() - started)
    return timings


def insert_statement_ns(database_url: str, conversation_id: int, sender_id: int, count: int, *, gin: bool):
    """The same INSERT, timed statement by statement inside one transaction that is rolled back;
    without the GIN index when `gin` is False (dropped in that transaction: nothing changes)."""
    import psycopg

    from bench.baselines import INSERT_MESSAGE_SQL, SAMPLE_BODY

    sql = INSERT_MESSAGE_SQL.format(p="%s")
    timings = []
    with psycopg.connect(database_url) as db:
        if not gin:
            db.execute(f"DROP INDEX {GIN_INDEX}")
        for _ in range(count):
            started = time.perf_counter_ns()
            db.execute(sql, (conversation_id, sender_id, SAMPLE_BODY, uuid.uuid4(), dt.datetime.now(dt.UTC)))
            timings.append(time.perf_counter_ns() - started)
        db.rollback()
    return timings


def measure_insert(ctx: Context, busy, conversation) -> tuple[list[Row], dict]:
    from django.db import connection

    from inbox.services import send_message

    count = samples(ctx)
    service_ns = []
    for i in range(count + 10):
        started = time.perf_counter_ns()
        send_message(sender=busy, conversation=conversation, body=f"Thanks, noted ({i}). Talk soon!")
        if i >= 10:
            service_ns.append(time.perf_counter_ns() - started)
    connection.close()
    service = summarize_ns(service_ns)
    own_bare = summarize_ns(bare_insert_ns(ctx.database_url, conversation.pk, busy.pk, count))
    bare = ctx.baselines.get("db_insert_ms") or own_bare
    p50_ratio = ratio(service["p50"], bare["p50"])
    figures = {"service_ms": service, "bare_insert_ms": bare, "bare_insert_same_table_ms": own_bare,
               "bare_from": "ctx.baselines" if "db_insert_ms" in ctx.baselines else "this benchmark",
               "p50_ratio": p50_ratio}  # fmt: skip
    insert_row = Row(
        "message insert through the service",
        f"p50 <= {TARGETS['insert']}x the bare insert (INSERT + COMMIT)",
        f"send_message {_ms(service)} vs bare {_ms(bare)}: p50 {p50_ratio}x",
        p50_ratio is not None and p50_ratio <= TARGETS["insert"],
        figures,
    )

    gin_count = 200 if ctx.quick else 2_000
    with_gin = summarize_ns(
        insert_statement_ns(ctx.database_url, conversation.pk, busy.pk, gin_count, gin=True)
    )
    without = summarize_ns(
        insert_statement_ns(ctx.database_url, conversation.pk, busy.pk, gin_count, gin=False)
    )
    gin_ratio = ratio(with_gin["p99"], without["p99"])
    gin_figures = {
        "with_gin_ms": with_gin,
        "without_gin_ms": without,
        "p99_ratio": gin_ratio,
        "p50_ratio": ratio(with_gin["p50"], without["p50"]),
        "how": "INSERT statements (no COMMIT) in a rolled-back transaction; without: GIN dropped in it",
    }
    gin_row = Row(
        "message INSERT p99 with the GIN search index vs without it",
        f"p99 <= {TARGETS['gin']}x without",
        f"with {_ms(with_gin)}; without {_ms(without)}: p99 {gin_ratio}x ({gin_count:,} inserts each)",
        gin_ratio is not None and gin_ratio <= TARGETS["gin"],
        gin_figures,
    )
    return [insert_row, gin_row], {"insert": figures, "gin": gin_figures}


def run(ctx: Context) -> Result:
    setup_django(ctx.env)
    from inbox import bulk_seed
    from inbox.models import Membership, Message
    from marketplace.accounts.models import User

    dataset = ensure_dataset(ctx)
    busy = User.objects.select_related("profile").get(username=bulk_seed.BUSY_SELLER)
    light = User.objects.select_related("profile").get(username=bulk_seed.LIGHT_BUYER)
    deep = Membership.objects.select_related("conversation").get(user=busy, other_user=light)
    deep_messages = Message.objects.filter(conversation_id=deep.conversation_id).count()
    size = f"{dataset:,} messages" + ("" if dataset >= FULL_MESSAGES else " (quick dataset, not 1M)")
    log(f"queries: on {size}; deep conversation {deep_messages:,} messages")

    rows, details = [], {"dataset_messages": dataset, "deep_conversation_messages": deep_messages}
    inbox_row, details["inbox"] = measure_inbox(ctx, busy, light)
    history_row, details["history"] = measure_history(ctx, busy, deep.conversation_id, deep_messages)
    search_row, details["search"] = measure_search(ctx, busy)
    rows += [inbox_row, history_row, search_row]
    # Sent into a conversation of the busy seller other than the deep one (history reads it).
    other = Membership.objects.filter(user=busy).exclude(pk=deep.pk).select_related("conversation").first()
    insert_rows, insert_details = measure_insert(ctx, busy, other.conversation)
    rows += insert_rows
    details.update(insert_details)
    if dataset < FULL_MESSAGES:
        for row in rows:
            row.measured += f" [on {dataset:,} messages]"
    return Result(rows=rows, details=details)
