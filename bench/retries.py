"""Send retries (R2): every send retried with the same client_id stores one message.

Two daphne processes on PostgreSQL + Redis. Each send goes to a random process with a fresh
client_id, then is retried 3 times with the same client_id (one after the other, after the
first answer, each to a random process). A share of the sends go first as 5 copies at once,
the way a client that timed out and retried in a hurry would. Many buyer/seller pairs, both
sides sending.

Pass: exactly one stored message per send; every retry and every concurrent copy answered
with the original message (its id and client_id); no 5xx.

    python -m bench.retries [--quick] [--sends 2000] [--concurrent 200] [--pairs 100]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import time
import uuid

from bench.clients import Deployment, HttpPool, as_letters, create_pairs
from bench.stack import (
    Context,
    CpuMeter,
    Result,
    Row,
    celery_queue_length,
    drop_queued_tasks,
    log,
    run_standalone,
    setup_django,
    start_servers,
    summarize_ns,
)

NAME = "retries"
TITLE = "Send retries: one message per client_id, retries answered with the original"

RETRIES = 3
COPIES = 5
IN_FLIGHT = 16  # sends being worked on at once (each with its retries)


class Sends:
    """Every request made and every answer, per send."""

    def __init__(self):
        self.statuses: collections.Counter = collections.Counter()  # by kind of request
        self.transport_errors: collections.Counter = collections.Counter()
        self.latency_ns: dict[str, list[int]] = collections.defaultdict(list)
        self.original: dict[str, int] = {}  # client_id -> message id of the first 201
        self.answers: dict[str, list[tuple[str, int, int | None]]] = collections.defaultdict(list)
        self.wrong_answers: list[dict] = []  # an answer that is not the original message

    async def post(self, pool: HttpPool, token: str, conv: int, client_id: str, body: str, kind: str):
        """One request, sent again on a transport error (the client cannot tell what happened)."""
        payload = json.dumps({"body": body, "client_id": client_id}).encode()
        for _attempt in range(5):
            started = time.perf_counter_ns()
            try:
                status, data = await pool.request(
                    "POST", f"/api/v1/conversations/{conv}/messages", token, payload, timeout=60
                )
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                self.transport_errors[type(exc).__name__] += 1
                await asyncio.sleep(0.1)
                continue
            self.latency_ns[kind].append(time.perf_counter_ns() - started)
            self.statuses[(kind, status)] += 1
            answer = json.loads(data) if data.startswith(b"{") else {}
            self.answers[client_id].append((kind, status, answer.get("id")))
            if status in (200, 201) and answer.get("client_id") != client_id:
                self.wrong_answers.append({"client_id": client_id, "kind": kind, "answer": answer})
            return status, answer
        return None, {}


async def one_send(
    sends: Sends, deployment: Deployment, pair: tuple[dict, dict, int], index: int, concurrent: bool,
    tag: str,
) -> None:  # fmt: skip
    buyer, seller, conv = pair
    sender = buyer if index % 2 == 0 else seller
    client_id = str(uuid.uuid4())
    body = f"retry {tag} n{as_letters(index)}"

    def pool() -> HttpPool:
        return random.choice(deployment.pools)

    if concurrent:
        first = await asyncio.gather(
            *(sends.post(pool(), sender["token"], conv, client_id, body, "concurrent") for _ in range(COPIES))
        )
    else:
        first = [await sends.post(pool(), sender["token"], conv, client_id, body, "first")]
    created = [answer.get("id") for status, answer in first if status == 201]
    if len(created) == 1:
        sends.original[client_id] = created[0]
    elif len(created) > 1:
        sends.wrong_answers.append({"client_id": client_id, "kind": "two 201s", "ids": created})
    for _ in range(RETRIES):
        await sends.post(pool(), sender["token"], conv, client_id, body, "retry")


def check_answers(sends: Sends) -> dict:
    """Every answer of a send against the message its one 201 created."""
    not_original, without_original = 0, 0
    refused = sum(
        1 for answers in sends.answers.values() for _k, status, _i in answers if status not in (200, 201)
    )
    for client_id, answers in sends.answers.items():
        original = sends.original.get(client_id)
        if original is None:
            without_original += 1
            continue
        not_original += sum(
            1 for _kind, status, message_id in answers if status in (200, 201) and message_id != original
        )
    return {
        "answers_not_the_original": not_original,
        "answers_not_2xx": refused,
        "sends_without_a_201": without_original,
    }


def stored(client_ids: list[str]) -> dict:
    """What the database holds for these client_ids."""
    from django.db.models import Count

    from inbox.models import Message

    rows = Message.objects.filter(client_id__in=client_ids)
    per_client = rows.values("client_id").annotate(n=Count("id")).filter(n__gt=1).count()
    return {
        "messages": rows.count(),
        "client_ids_stored_twice": per_client,
        "ids": {str(c): i for c, i in rows.values_list("client_id", "id")},
    }


async def run(ctx: Context, sends_count: int | None = None, concurrent_count: int | None = None,
              pairs_count: int | None = None) -> Result:  # fmt: skip
    sends_count = sends_count or (200 if ctx.quick else 2000)
    concurrent_count = concurrent_count if concurrent_count is not None else sends_count // 10
    pairs_count = pairs_count or (20 if ctx.quick else 100)
    product = asyncio.create_task(start_servers(ctx, 2))
    await asyncio.to_thread(setup_django, ctx.env)
    pairs = await asyncio.to_thread(create_pairs, pairs_count, ctx.run_tag, prefix="rr")
    queue_before = await asyncio.to_thread(celery_queue_length, ctx.redis_url)
    deployment = Deployment(await product)
    meter = CpuMeter(deployment.pids)
    sends = Sends()
    concurrent = set(random.sample(range(sends_count), concurrent_count))
    tag = as_letters(ctx.run_tag)
    log(f"retries: {sends_count} sends x {RETRIES} retries ({concurrent_count} as {COPIES} copies at once)")
    slots = asyncio.Semaphore(IN_FLIGHT)

    async def send(index: int) -> None:
        async with slots:
            await one_send(sends, deployment, pairs[index % len(pairs)], index, index in concurrent, tag)

    before = meter.snapshot()
    started = time.monotonic()
    try:
        await asyncio.gather(*(send(i) for i in range(sends_count)))
    finally:
        deployment.close()
        await asyncio.to_thread(drop_queued_tasks, ctx.redis_url, queue_before)
    seconds = round(time.monotonic() - started, 1)
    cpu = CpuMeter.between(before, meter.snapshot())
    in_db = await asyncio.to_thread(stored, list(sends.answers))
    answers = check_answers(sends)
    db_mismatch = sum(1 for cid, mid in sends.original.items() if in_db["ids"].get(cid) != mid)
    statuses = {f"{kind} {status}": n for (kind, status), n in sorted(sends.statuses.items())}
    server_errors = sum(n for (_kind, status), n in sends.statuses.items() if status >= 500)
    latency = {kind: summarize_ns(values) for kind, values in sends.latency_ns.items()}
    requests = sum(sends.statuses.values())
    figures = {
        "sends": sends_count,
        "concurrent_sends": concurrent_count,
        "requests": requests,
        "seconds": seconds,
        "stored": in_db["messages"],
        "client_ids_stored_twice": in_db["client_ids_stored_twice"],
        **answers,
        "answers_with_another_client_id": len(sends.wrong_answers),
        "originals_not_in_the_database": db_mismatch,
        "statuses": statuses,
        "transport_errors": dict(sends.transport_errors),
        "latency_ms": latency,
        "cpu": cpu,
    }
    rows = [
        Row(
            "R2 send retries: messages stored",
            f"exactly {sends_count} ({sends_count} sends, each retried {RETRIES}x with its client_id; "
            f"{concurrent_count} first sent as {COPIES} copies at once)",
            f"{in_db['messages']} stored from {requests} requests in {seconds} s "
            f"({in_db['client_ids_stored_twice']} client_ids stored twice)",
            in_db["messages"] == sends_count and in_db["client_ids_stored_twice"] == 0,
            figures,
        ),
        Row(
            "R2 send retries: every retry and concurrent copy answered with the original",
            "0 answers with another message; 0 5xx",
            f"{answers['answers_not_the_original']} answers not the original, "
            f"{answers['answers_not_2xx']} not 200/201, "
            f"{answers['sends_without_a_201']} sends without exactly one 201, "
            f"{len(sends.wrong_answers)} answers with another client_id, {db_mismatch} originals not stored; "
            f"statuses {statuses}; transport errors {dict(sends.transport_errors) or 0}",
            answers["answers_not_the_original"] == 0
            and answers["answers_not_2xx"] == 0
            and answers["sends_without_a_201"] == 0
            and not sends.wrong_answers
            and db_mismatch == 0
            and server_errors == 0,
            {"wrong_answers": sends.wrong_answers[:20]},
        ),
        Row(
            "R2 send retries: latency",
            "(figure)",
            "; ".join(
                f"{kind} p50 {v['p50']} ms, p99 {v['p99']} ms (n {v['n']})" for kind, v in latency.items()
            )
            + f"; CPU {CpuMeter.shares(cpu)}",
            None,
            latency,
        ),
    ]
    return Result(rows, {"pairs": pairs_count})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retries", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 sends, 20 of them as concurrent copies")
    parser.add_argument("--sends", type=int, help="sends (default 2000; 200 with --quick)")
    parser.add_argument(
        "--concurrent", type=int, help="sends first sent as 5 copies at once (default sends/10)"
    )
    parser.add_argument("--pairs", type=int, help="buyer/seller pairs (default 100; 20 with --quick)")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    return run_standalone(
        NAME, run, quick=args.quick, keep_logs=args.keep_logs,
        sends_count=args.sends, concurrent_count=args.concurrent, pairs_count=args.pairs,
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
