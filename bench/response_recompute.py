"""Response figures recompute benchmark: `manage.py recompute_response_rates` over a large
history, its wall time and its peak memory.

Not a test: it measures. Against DATABASE_URL (PostgreSQL, a database of its own: created if
missing, refused if it already has users), it runs `manage.py migrate`, then writes a history
with set-based SQL (INSERT ... SELECT over generate_series and unnest, no ORM):

- --sellers sellers and as many buyers, in a mix of time zones; one seller in ten has two
  away periods;
- 20 conversations a seller, each with its two memberships, and --messages messages between
  them (conversation lengths drawn from a log-normal: most are short, a few run to hundreds);
- each conversation starts with the buyer's first message, usually followed by the seller's
  answer, then either of them writes. The seller answers after 1 min to 72 h (a tenth of the
  answers between 20 and 30 h, either side of the 24-hour line, one in twenty later still),
  and in 8% of conversations never;
- 5% of conversations get the seller's auto-reply (an automatic message) 5 s after the first
  message; 15% get an order (an orders.Order row) from some message on, and every message from
  then on is tagged with it;
- 0.5% of the other messages went through moderation: still held, approved later (visible,
  with an approval in moderation.ModerationDecision) or rejected (with its decision).

It then runs the command as a subprocess, so that its memory is measured alone (peak RSS from
wait4), with DJANGO_DEBUG=0 as in production: once for a single seller (Django's own
footprint), once on an empty obligations table (every obligation is new), once again (nothing
may change) and once with --dry-run. It does all of that first at --fraction of the scale
(default 1/10), deletes that history, then at full scale: a rebuild that streams one seller at
a time peaks at about the same memory at both scales, not ten times more.

It prints one JSON object, then a short summary, and exits with 1 if a check failed (the
second run changed something, or the first did not create every obligation). Usage (from the
project root):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_responses REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python bench/response_recompute.py [--sellers 10000] [--messages 1000000]
        [--fraction 0.1] [--seed 1] [--keep] [--json-out results.json]

Everything it wrote is removed at the end (the whole database when it created it), on
Ctrl-C too; --keep keeps the full-scale history and the obligations.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: bench/ is not on the path
from bench.stack import PYTHON, ROOT, log, machine_info, redact

CONVERSATIONS_PER_SELLER = 20
TIME_ZONES = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
]
RESULT_LINE = re.compile(
    r"(?P<sellers>\d+) sellers, (?P<obligations>\d+) obligations, (?P<changed>\d+) (?:changed|would change), "
    r"in (?P<seconds>[\d.]+) s"
)


def git_commit() -> str | None:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    return None


# ---- The database -----------------------------------------------------------------------------


def ensure_database(database_url: str) -> bool:
    """Create DATABASE_URL's database when it does not exist; True when this run created it."""
    name = conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(database_url, dbname="postgres", autocommit=True) as maintenance:
        if maintenance.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        maintenance.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


def drop_database(database_url: str) -> None:
    name = conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(database_url, dbname="postgres", autocommit=True) as maintenance:
        maintenance.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def command_env(database_url: str, redis_url: str) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DJANGO_DEBUG="0",  # as in production: no query log kept in memory
        DJANGO_SECURE_SSL_REDIRECT="0",
        LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"),
    )
    env.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(48))
    return env


def migrate(env: dict) -> None:
    result = subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py migrate failed:\n{result.stdout}\n{result.stderr}")


# ---- The history --------------------------------------------------------------------------------


def conversation_plan(rng: random.Random, conversations: int, messages: int) -> dict[str, list]:
    """Per conversation: its length (the lengths add up to `messages`), how long ago it started,
    whether the seller ever answers, whether an auto-reply went out, and from which message on
    an order was open (0: never)."""
    draws = [rng.lognormvariate(1.2, 1.1) for _ in range(conversations)]
    scale = (messages - conversations) / sum(draws)
    lengths = [1 + int(draw * scale) for draw in draws]
    for index in rng.sample(range(conversations), messages - sum(lengths)):  # what rounding down lost
        lengths[index] += 1
    plan = {"length": lengths, "age_seconds": [], "answered": [], "auto_reply": [], "order_from": []}
    for length in lengths:
        # Long conversations started earlier, so that most of them end before now.
        plan["age_seconds"].append(rng.uniform(0, 90 * 86400) + length * 6 * 3600)
        plan["answered"].append(rng.random() >= 0.08)
        plan["auto_reply"].append(length >= 2 and rng.random() < 0.05)
        plan["order_from"].append(rng.randint(2, length) if length >= 3 and rng.random() < 0.15 else 0)
    return plan


GENERATE_SQL = [
    # Users and profiles: sellers first, then buyers.
    """
    INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, email,
                               is_staff, is_active, date_joined)
    SELECT '!', false,
           CASE WHEN g < %(sellers)s THEN %(seller_prefix)s || g
                ELSE %(buyer_prefix)s || (g - %(sellers)s) END,
           '', '', '', false, true, now() - interval '2 years'
    FROM generate_series(0, 2 * %(sellers)s - 1) AS g
    ORDER BY g
    """,
    """
    CREATE TEMP TABLE bench_user AS
    SELECT id, is_seller, row_number() OVER (PARTITION BY is_seller ORDER BY id) - 1 AS n
    FROM (SELECT id, starts_with(username, %(seller_prefix)s) AS is_seller
          FROM accounts_user WHERE starts_with(username, %(prefix)s)) AS ours
    """,
    "CREATE INDEX ON bench_user (is_seller, n)",
    """
    INSERT INTO accounts_profile (user_id, display_name, role, timezone, languages, headline,
                                  created_at, enter_sends, reading_language, accepts_new_sellers)
    SELECT id, CASE WHEN is_seller THEN 'Seller ' ELSE 'Buyer ' END || n,
           CASE WHEN is_seller THEN 'seller' ELSE 'buyer' END,
           (%(zones)s::text[])[1 + n %% cardinality(%(zones)s::text[])],
           '[]', '', now(), true, 'en', true
    FROM bench_user
    """,
    # One seller in ten was away twice, for 1 to 7 days, some time in the last 120 days.
    """
    INSERT INTO accounts_awayperiod (user_id, starts_on, ends_on, message, created_at)
    SELECT id, starts_on, starts_on + ((n + g) %% 7)::int, 'On holiday, back soon', now()
    FROM bench_user, generate_series(1, 2) AS g,
         LATERAL (SELECT current_date - ((n * 37 + g * 41) %% 120)::int AS starts_on) AS day
    WHERE is_seller AND n %% 10 = 0
    """,
    # The plan: conversation c is between seller c mod sellers and one of their 20 buyers.
    """
    CREATE TEMP TABLE bench_plan AS
    SELECT p.c - 1 AS c, s.id AS seller_id, b.id AS buyer_id, p.length,
           now() - make_interval(secs => p.age_seconds) AS started_at,
           p.answered, p.auto_reply, p.order_from,
           NULL::bigint AS conversation_id, NULL::bigint AS order_id
    FROM unnest(%(length)s::int[], %(age_seconds)s::float8[], %(answered)s::bool[],
                %(auto_reply)s::bool[], %(order_from)s::int[])
         WITH ORDINALITY AS p(length, age_seconds, answered, auto_reply, order_from, c)
    JOIN bench_user s ON s.is_seller AND s.n = (p.c - 1) %% %(sellers)s
    JOIN bench_user b ON NOT b.is_seller
                     AND b.n = ((p.c - 1) %% %(sellers)s * 7 + (p.c - 1) / %(sellers)s) %% %(sellers)s
    """,
    """
    WITH made AS (
        INSERT INTO inbox_conversation (created_at, user_low_id, user_high_id)
        SELECT started_at, least(seller_id, buyer_id), greatest(seller_id, buyer_id)
        FROM bench_plan ORDER BY c
        RETURNING id, user_low_id, user_high_id
    )
    UPDATE bench_plan SET conversation_id = made.id FROM made
    WHERE made.user_low_id = least(seller_id, buyer_id) AND made.user_high_id = greatest(seller_id, buyer_id)
    """,
    """
    INSERT INTO inbox_membership (conversation_id, user_id, other_user_id, unread_count, created_at,
                                  draft, has_custom_offer, has_request)
    SELECT conversation_id, seller_id, buyer_id, 0, started_at, '', false, false FROM bench_plan
    UNION ALL
    SELECT conversation_id, buyer_id, seller_id, 0, started_at, '', false, false FROM bench_plan
    """,
    """
    WITH made AS (
        INSERT INTO orders_order (number, title, description, price, delivery_days, revisions_included,
                                  revisions_used, status, requirements, due_at, created_at, buyer_id,
                                  seller_id, conversation_id)
        SELECT upper(substr(md5(%(prefix)s || c), 1, 12)), 'Logo design', 'A logo for my bakery', 80, 3,
               1, 0, 'active', '', started_at + interval '10 days', started_at, buyer_id, seller_id,
               conversation_id
        FROM bench_plan WHERE order_from > 0
        RETURNING id, conversation_id
    )
    UPDATE bench_plan SET order_id = made.id FROM made WHERE made.conversation_id = bench_plan.conversation_id
    """,
    # The messages, in the order they were sent (ids grow with time, as they do live).
    """
    INSERT INTO inbox_message (conversation_id, sender_id, body, status, client_id, created_at, card,
                               kind, order_id, moderation_findings, moderation_reason, is_automatic)
    SELECT conversation_id, CASE WHEN from_seller THEN seller_id ELSE buyer_id END,
           CASE WHEN position = 1 THEN 'Hi! Is your logo gig open this week?'
                WHEN is_automatic THEN 'Thanks for your message! I usually answer within a day.'
                WHEN from_seller THEN 'Sure, happy to help with that.'
                ELSE 'One more question about the brief.' END,
           CASE WHEN is_automatic OR moderated >= 0.005 THEN 'visible'
                WHEN moderated < 0.002 THEN 'held'
                WHEN moderated < 0.004 THEN 'visible'
                ELSE 'rejected' END,
           gen_random_uuid(),
           started_at + make_interval(secs => sum(gap) OVER (PARTITION BY c ORDER BY position)) AS sent_at,
           '{}', 'text',
           CASE WHEN order_from > 0 AND position >= order_from THEN order_id END,
           '[]',
           CASE WHEN NOT is_automatic AND moderated < 0.005 THEN 'Held for review: contact details'
                ELSE '' END,
           is_automatic
    FROM (
        SELECT slot.*,
               CASE WHEN position = 1 THEN 0
                    WHEN is_automatic THEN 5
                    WHEN NOT from_seller THEN ceil(30 + 21600 * delay)  -- buyers: 30 s to 6 h
                    WHEN delay < 0.60 THEN ceil(60 + 10800 * delay / 0.60)  -- 1 min to 3 h
                    WHEN delay < 0.85 THEN ceil(10800 + 61200 * (delay - 0.60) / 0.25)  -- 3 to 20 h
                    WHEN delay < 0.95 THEN ceil(72000 + 36000 * (delay - 0.85) / 0.10)  -- 20 to 30 h
                    ELSE ceil(108000 + 151200 * (delay - 0.95) / 0.05) END AS gap  -- 30 to 72 h
        FROM (
            SELECT p.*, position, delay, moderated,
                   p.auto_reply AND position = 2 AS is_automatic,
                   (p.auto_reply AND position = 2) OR (p.answered AND seller_turn < seller_odds)
                       AS from_seller
            FROM bench_plan AS p,
                 LATERAL (SELECT g AS position, random() AS seller_turn, random() AS delay,
                                 random() AS moderated,
                                 CASE g WHEN 1 THEN 0 WHEN 2 THEN 0.9 ELSE 0.5 END AS seller_odds
                          FROM generate_series(1, p.length) AS g) AS draws
        ) AS slot
    ) AS message
    ORDER BY sent_at, conversation_id
    """,
    """
    INSERT INTO moderation_moderationdecision (message_id, decision, note, created_at, moderator_id)
    SELECT m.id, CASE WHEN m.status = 'rejected' THEN 'rejected' ELSE 'approved' END, '',
           m.created_at + interval '1 hour', NULL
    FROM inbox_message AS m JOIN bench_plan AS p ON p.conversation_id = m.conversation_id
    WHERE m.moderation_reason <> '' AND m.status <> 'held'
    """,
]

ANALYZED_TABLES = [
    "accounts_user",
    "accounts_profile",
    "accounts_awayperiod",
    "inbox_conversation",
    "inbox_membership",
    "inbox_message",
    "orders_order",
    "moderation_moderationdecision",
    "inbox_responseobligation",
]

HISTORY_COUNTS_SQL = """
SELECT (SELECT count(*) FROM bench_user WHERE is_seller),
       (SELECT count(*) FROM bench_user WHERE NOT is_seller),
       (SELECT count(*) FROM bench_plan),
       (SELECT count(*) FROM bench_plan WHERE order_from > 0),
       (SELECT count(*) FROM accounts_awayperiod WHERE user_id IN (SELECT id FROM bench_user)),
       count(*),
       count(*) FILTER (WHERE m.order_id IS NOT NULL),
       count(*) FILTER (WHERE m.is_automatic),
       count(*) FILTER (WHERE m.status = 'held'),
       count(*) FILTER (WHERE m.status = 'visible' AND m.moderation_reason <> ''),
       count(*) FILTER (WHERE m.status = 'rejected'),
       max(p.length)
FROM inbox_message AS m JOIN bench_plan AS p ON p.conversation_id = m.conversation_id
"""
HISTORY_COUNTS = [
    "sellers",
    "buyers",
    "conversations",
    "orders",
    "away_periods",
    "messages",
    "order_messages",
    "automatic_messages",
    "held_messages",
    "approved_after_hold",
    "rejected_messages",
    "longest_conversation",
]


def generate_history(database_url: str, *, sellers: int, messages: int, prefix: str, seed: int) -> dict:
    conversations = sellers * min(CONVERSATIONS_PER_SELLER, sellers)
    if messages < conversations:
        raise RuntimeError(f"--messages must be at least {conversations} (one per conversation)")
    params = {
        "sellers": sellers,
        "prefix": prefix,
        "seller_prefix": f"{prefix}s",
        "buyer_prefix": f"{prefix}b",
        "zones": TIME_ZONES,
        **conversation_plan(random.Random(seed), conversations, messages),
    }
    started = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("SET synchronous_commit = off")
        connection.execute("SELECT setseed(%s)", [1 / (seed + 1)])
        for statement in GENERATE_SQL:
            connection.execute(statement, params)
        generated = time.monotonic()
        for table in ANALYZED_TABLES:
            connection.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
        counts = dict(zip(HISTORY_COUNTS, connection.execute(HISTORY_COUNTS_SQL).fetchone(), strict=True))
        message_table_mib = connection.execute(
            "SELECT pg_total_relation_size('inbox_message') / 1048576.0"
        ).fetchone()[0]
    return {
        **counts,
        "insert_seconds": round(generated - started, 1),
        "analyze_seconds": round(time.monotonic() - generated, 1),
        "message_table_mib_with_indexes": round(float(message_table_mib), 1),
    }


DELETE_SQL = [
    "CREATE TEMP TABLE bench_gone AS SELECT id FROM accounts_user WHERE starts_with(username, %(prefix)s)",
    "DELETE FROM inbox_responseobligation WHERE seller_id IN (SELECT id FROM bench_gone)",
    """DELETE FROM moderation_moderationdecision AS d USING inbox_message AS m
       WHERE d.message_id = m.id AND m.sender_id IN (SELECT id FROM bench_gone)""",
    "DELETE FROM inbox_message WHERE sender_id IN (SELECT id FROM bench_gone)",
    "DELETE FROM orders_order WHERE seller_id IN (SELECT id FROM bench_gone)",
    "DELETE FROM inbox_membership WHERE user_id IN (SELECT id FROM bench_gone)",
    "DELETE FROM inbox_conversation WHERE user_low_id IN (SELECT id FROM bench_gone)",
    "DELETE FROM accounts_awayperiod WHERE user_id IN (SELECT id FROM bench_gone)",
    "DELETE FROM accounts_profile WHERE user_id IN (SELECT id FROM bench_gone)",
    "DELETE FROM accounts_user WHERE id IN (SELECT id FROM bench_gone)",
]


def delete_history(database_url: str, prefix: str) -> None:
    """Delete what generate_history wrote for `prefix`, and the obligations of its sellers."""
    with psycopg.connect(database_url) as connection, connection.transaction():
        for statement in DELETE_SQL:
            connection.execute(statement, {"prefix": prefix})


# ---- Measuring the command --------------------------------------------------------------------


def run_recompute(env: dict, *args: str) -> dict:
    """Run the command in a child process; its wall time, CPU time and peak RSS, and what it
    printed."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        child = subprocess.Popen(
            [PYTHON, "manage.py", "recompute_response_rates", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, not all children's
        wall = time.monotonic() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        printed, errors = out.read().decode(), err.read().decode(errors="replace")
    if child.returncode != 0:
        raise RuntimeError(f"recompute_response_rates {' '.join(args)} exited {child.returncode}:\n{errors}")
    found = RESULT_LINE.search(printed)
    if found is None:
        raise RuntimeError(f"unexpected output of recompute_response_rates: {printed!r}")
    return {
        "args": list(args),
        "output": printed.strip(),
        "sellers": int(found["sellers"]),
        "obligations": int(found["obligations"]),
        "changed": int(found["changed"]),
        "command_seconds": float(found["seconds"]),
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # ru_maxrss is in KiB on Linux
    }


def measure_scale(
    database_url: str, env: dict, *, sellers: int, messages: int, prefix: str, seed: int
) -> dict:
    log(f"writing {sellers} sellers, {sellers} buyers and {messages} messages")
    history = generate_history(database_url, sellers=sellers, messages=messages, prefix=prefix, seed=seed)
    log(f"written in {history['insert_seconds']} s (+ {history['analyze_seconds']} s ANALYZE): {history}")
    runs = {}
    for name, args in [
        ("one_seller", ("--seller", f"{prefix}s0", "--dry-run")),
        ("first", ()),
        ("again", ()),
        ("dry_run", ("--dry-run",)),
    ]:
        log(f"recompute_response_rates {' '.join(args)}")
        runs[name] = run_recompute(env, *args)
        log(f"  {runs[name]['output']}; {runs[name]['peak_rss_mib']} MiB peak RSS")
    first, again, dry_run = runs["first"], runs["again"], runs["dry_run"]
    checks = {
        "first_run_created_every_obligation": first["changed"] == first["obligations"] > 0,
        "second_run_changed_nothing": again["changed"] == 0 and again["obligations"] == first["obligations"],
        "dry_run_would_change_nothing": dry_run["changed"] == 0
        and dry_run["obligations"] == first["obligations"],
        "every_seller_rebuilt": first["sellers"] == sellers,
    }
    return {"sellers": sellers, "messages": messages, "history": history, "runs": runs, "checks": checks}


def benchmark(args) -> dict:
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        raise RuntimeError("set DATABASE_URL to a dedicated PostgreSQL database (postgres://...)")
    redis_url = os.environ.get("REDIS_URL", "")
    env = command_env(database_url, redis_url)
    run_tag = secrets.token_hex(3)
    scales = (
        [(round(args.sellers * args.fraction), round(args.messages * args.fraction))] if args.fraction else []
    )
    scales.append((args.sellers, args.messages))
    created_database = ensure_database(database_url)
    log(f"database {redact(database_url)} ({'created' if created_database else 'existing'}); migrate")
    prefixes, results = [], []
    try:
        migrate(env)
        with psycopg.connect(database_url) as connection:
            if connection.execute("SELECT exists(SELECT 1 FROM accounts_user)").fetchone()[0]:
                raise RuntimeError(
                    "the database already has users: the command would rebuild theirs too. "
                    "Use a dedicated database (or drop this one)."
                )
            server_version = connection.execute("SHOW server_version").fetchone()[0]
        for index, (sellers, messages) in enumerate(scales):
            prefix = f"rr{run_tag}{index}_"
            prefixes.append(prefix)
            results.append(
                measure_scale(
                    database_url, env, sellers=sellers, messages=messages, prefix=prefix, seed=args.seed
                )
            )
            if index < len(scales) - 1:
                log("deleting this history before the next scale")
                delete_history(database_url, prefix)
    finally:
        if args.keep:
            log(f"kept the last history (usernames starting with {prefixes[-1] if prefixes else '-'})")
        elif created_database:
            log(f"dropping the database this run created ({conninfo_to_dict(database_url)['dbname']})")
            drop_database(database_url)
        else:
            log("deleting what this run wrote")
            for prefix in prefixes:
                delete_history(database_url, prefix)
    return {
        "benchmark": "response_recompute",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "command": " ".join(
            [
                *(f"{n}={redact(os.environ[n])}" for n in ("DATABASE_URL", "REDIS_URL") if n in os.environ),
                os.path.relpath(sys.executable, ROOT),
                *sys.argv,
            ]
        ),
        "settings": {
            "sellers": args.sellers,
            "messages": args.messages,
            "fraction": args.fraction,
            "seed": args.seed,
            "conversations_per_seller": CONVERSATIONS_PER_SELLER,
            "database_url": redact(database_url),
            "postgresql": server_version,
        },
        "machine": machine_info(),
        "versions": {name: importlib.metadata.version(name) for name in ("django", "psycopg")},
        "scales": results,
    }


def human_summary(report: dict) -> str:
    machine = report["machine"]
    lines = [
        f"response_recompute on PostgreSQL {report['settings']['postgresql']}, {machine['cpu_count']} CPUs, "
        f"Python {machine['python']} ({report['date']})"
    ]
    for scale in report["scales"]:
        history, runs = scale["history"], scale["runs"]
        lines.append(
            f"  {scale['sellers']:,} sellers, {history['conversations']:,} conversations, "
            f"{history['messages']:,} messages (written in {history['insert_seconds']} s):"
        )
        for name, run in runs.items():
            lines.append(
                f"    {name:<10} {run['wall_seconds']:>7} s wall ({run['command_seconds']} s in the command, "
                f"{run['cpu_seconds']} s CPU), peak RSS {run['peak_rss_mib']} MiB: {run['output']}"
            )
        failed = [name for name, passed in scale["checks"].items() if not passed]
        lines.append(f"    checks: {'all passed' if not failed else 'FAILED ' + ', '.join(failed)}")
    if len(report["scales"]) > 1:
        small, full = (
            scale["runs"]["first"]["peak_rss_mib"] for scale in (report["scales"][0], report["scales"][-1])
        )
        lines.append(f"  peak RSS of the first run, full scale / fraction: {full / small:.2f}x")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sellers", type=int, default=10_000, help="sellers, and as many buyers (10000)")
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages in all (1000000)")
    parser.add_argument(
        "--fraction",
        type=float,
        default=0.1,
        help="also measure at this fraction of the scale first (0.1; 0: no)",
    )
    parser.add_argument("--seed", type=int, default=1, help="of the generated history (1)")
    parser.add_argument("--keep", action="store_true", help="keep the full-scale history and obligations")
    parser.add_argument("--json-out", type=Path, help="also write the JSON report to this file")
    args = parser.parse_args(argv)
    if args.sellers < 1 or args.messages < 1 or not 0 <= args.fraction < 1:
        parser.error("--sellers and --messages must be positive, --fraction in [0, 1)")
    if args.fraction and round(args.sellers * args.fraction) < 1:
        parser.error("--fraction leaves no seller")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)

    def on_sigterm(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        report = benchmark(args)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except RuntimeError as exc:
        log(f"failed: {exc}")
        return 1
    text = json.dumps(report, indent=2)
    print(text)
    if args.json_out:
        args.json_out.write_text(text + "\n")
    print()
    print(human_summary(report))
    return 0 if all(passed for scale in report["scales"] for passed in scale["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
