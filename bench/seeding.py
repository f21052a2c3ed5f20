"""Bulk seed: `manage.py seed_demo --messages N` (inbox.bulk_seed) against a raw COPY.

Baseline first: psycopg COPY of N pre-built message rows (bodies from the same generator) into
inbox_message as it stands, every index maintained and every foreign key checked, then rolled
back; its rows/s is the ceiling of loading rows one by one through COPY. Then the product: the
real command in a child process, timed from start to exit (Django start-up, users, planning,
COPY, index builds, commit and ANALYZE included). Full: 1,000,000 messages (target <= 60 s and
>= 0.25x the COPY rows/s). Quick: 50,000, and the 60 s target is checked on the time projected
linearly to 1M.

The seeded dataset stays in the database: bench.queries reads it (it finds it by the generated
users' names, inbox.bulk_seed.BUSY_SELLER). A previous one is cleared (untimed) first.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import time
import uuid

from bench.stack import PYTHON, ROOT, Context, Result, Row, log, make_bench_users, manage, setup_django

NAME = "seeding"
TITLE = "Bulk seed of 1M messages (seed_demo --messages) against raw psycopg COPY"

FULL_MESSAGES = 1_000_000
QUICK_MESSAGES = 50_000
TARGET_SECONDS = 60
TARGET_COPY_RATIO = 0.25
COPY_COLUMNS = (
    "body, status, client_id, created_at, conversation_id, sender_id, card, kind, "
    "moderation_findings, moderation_reason, is_automatic"
)


def vacuum(database_url: str) -> None:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE) inbox_message")


def raw_copy_rows_per_s(ctx: Context, count: int) -> dict:
    """COPY `count` message rows into inbox_message in one transaction, foreign keys checked
    (SET CONSTRAINTS ALL IMMEDIATE), then ROLLBACK: rows per second of the COPY and checks."""
    import psycopg

    from inbox import bulk_seed
    from inbox.services import get_or_create_conversation

    (sender, _), (recipient, _) = make_bench_users(2, ctx.run_tag, prefix="seedcopy")
    conversation = get_or_create_conversation(user=sender, other_user=recipient)
    bodies = bulk_seed._bodies(random.Random(7), bulk_seed.BODY_POOL)
    at = "2025-01-01T00:00:00+00:00"
    prefix = str(uuid.uuid4())[:24]
    buffer = io.StringIO()
    for k in range(count):
        buffer.write(
            f"{bodies[k % len(bodies)]}\tvisible\t{prefix}{k:012x}\t{at}\t{conversation.pk}\t{sender.pk}\t"
            "{}\ttext\t[]\t\tf\n"
        )
    data = buffer.getvalue().encode()
    with psycopg.connect(ctx.database_url) as connection:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY inbox_message ({COPY_COLUMNS}) FROM STDIN") as copy:
                for offset in range(0, len(data), 1 << 20):
                    copy.write(data[offset : offset + (1 << 20)])
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        seconds = time.perf_counter() - started
        connection.rollback()
    return {"rows": count, "seconds": round(seconds, 2), "rows_per_s": round(count / seconds)}


def run(ctx: Context) -> Result:
    setup_django(ctx.env)
    count = QUICK_MESSAGES if ctx.quick else FULL_MESSAGES
    log(f"seeding: clearing the previous generated dataset, then raw COPY of {count:,} rows")
    manage(ctx.env, "seed_demo", "--clear-generated")
    vacuum(ctx.database_url)
    baseline = raw_copy_rows_per_s(ctx, count)
    vacuum(ctx.database_url)  # the rolled-back rows

    log(f"seeding: seed_demo --messages {count:,}")
    started = time.perf_counter()
    completed = subprocess.run(
        [PYTHON, "manage.py", "seed_demo", "--messages", str(count)],
        cwd=ROOT, env=ctx.env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"seed_demo --messages failed:\n{completed.stdout}\n{completed.stderr}"[-2000:])
    phases = {}
    for line in completed.stdout.splitlines():
        if line.startswith("phases: "):
            phases = json.loads(line.removeprefix("phases: "))
    rows_per_s = count / seconds
    copy_ratio = round(rows_per_s / baseline["rows_per_s"], 2)
    projected = seconds * FULL_MESSAGES / count
    full = count == FULL_MESSAGES
    # A quick seed is dominated by fixed costs (start-up, ANALYZE, index builds over the table):
    # its linear projection is shown, but only the COPY ratio is judged.
    met = copy_ratio >= TARGET_COPY_RATIO and (seconds <= TARGET_SECONDS or not full)
    size = (
        ""
        if full
        else f" (quick: {count:,} messages, 60 s not judged; linear projection to 1M {projected:.0f} s)"
    )
    measured = (
        f"{seconds:.1f} s for {count:,} messages = {rows_per_s:,.0f} rows/s = {copy_ratio}x raw COPY{size}"
    )
    figures = {
        "messages": count,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows_per_s),
        "copy_ratio": copy_ratio,
        "projected_1m_seconds": round(projected, 1),
        "phases": phases,
    }
    return Result(
        rows=[
            Row(
                f"raw COPY of {count:,} message rows (psycopg, same table, indexes and FKs live)",
                "(baseline)",
                f"{baseline['seconds']} s = {baseline['rows_per_s']:,} rows/s",
                None,
                baseline,
            ),
            Row(
                "seeding 1M messages (`seed_demo --messages 1000000`)",
                f"<= {TARGET_SECONDS} s; >= {TARGET_COPY_RATIO}x raw COPY rows/s",
                measured,
                met,
                figures,
            ),
        ],
        details={"command_output": completed.stdout.strip().splitlines()},
    )
