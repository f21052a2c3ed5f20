"""Reconnect storm (R1): sockets cut at random while messages flow; every tab ends with the
database's transcript.

Buyer/seller pairs, one conversation each, every user with `--tabs` tabs (a socket each, the
tabs of one user on different daphne processes). Messages go at `--rate` msg/s, round robin
over the conversations, buyer and seller in turn. Every `--every` seconds a fifth of the tabs
are cut (a TCP reset, no closing handshake) and reconnect 0-3 s later, resuming from their
cursor as the page does (static/inbox/live.js, bench.clients.ResumingClient): socket, then
GET /api/v1/events?since=<cursor>, events applied in cursor order, an event already applied
dropped.

At the end each tab's transcript (the message ids of message.created events it applied, in
order) is compared with the conversation's messages in the database: lost, duplicated, out of
order, extra; all must be 0. Resync time: from the start of a reconnect (after the 0-3 s
pause) until the tab has caught up with the event log.

    python -m bench.storm [--quick] [--messages 10000] [--rate 50] [--pairs 50] [--tabs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import random
import resource
import time
import uuid

from bench.clients import Deployment, ResumingClient, as_letters, connect_clients, create_pairs
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

NAME = "storm"
TITLE = "Reconnect storm: transcripts equal the database's with sockets cut at random"

RESYNC_P95_LIMIT_MS = 2000
GIVE_UP_SECONDS = 120  # a tab that cannot reconnect for this long is reported (the page never gives up)


class Tab(ResumingClient):
    """A tab of one conversation's participant: the message ids it shows, in order."""

    def __init__(self, user: dict, conv: int, server: int, name: str):
        super().__init__(user["id"], user["username"], user["token"], server)
        self.conv, self.name = conv, name
        self.transcript: list[int] = []
        self.applied_via: collections.Counter = collections.Counter()
        self.dropped_as_seen = 0

    def on_apply(self, event: dict, via: str) -> None:
        if event.get("type") == "message.created":
            message = event.get("message") or {}
            if message.get("conversation_id") == self.conv:
                self.transcript.append(message["id"])
                self.applied_via[via] += 1

    def on_duplicate(self, event: dict) -> None:
        self.dropped_as_seen += 1


class Sender:
    """Sends at a steady rate; a send that fails is sent again with its client_id, as a client
    would (it cannot tell whether it was stored)."""

    def __init__(self, deployment: Deployment, pairs: list[tuple[dict, dict, int]], tag: str):
        self.deployment, self.pairs, self.tag = deployment, pairs, tag
        self.statuses: collections.Counter = collections.Counter()
        self.transport_errors: collections.Counter = collections.Counter()
        self.accepted: dict[int, list[int]] = collections.defaultdict(list)  # conv -> message ids
        self.not_stored = 0
        self.post_ns: list[int] = []

    async def send(self, index: int) -> None:
        buyer, seller, conv = self.pairs[index % len(self.pairs)]
        turn = index // len(self.pairs)
        sender, server = (buyer, 0) if turn % 2 == 0 else (seller, 1)
        pool = self.deployment.pools[server % len(self.deployment.pools)]
        payload = json.dumps(
            {"body": f"storm {self.tag} n{as_letters(index)}", "client_id": str(uuid.uuid4())}
        ).encode()
        started = time.perf_counter_ns()
        for attempt in range(8):
            try:
                status, data = await pool.request(
                    "POST", f"/api/v1/conversations/{conv}/messages", sender["token"], payload, timeout=60
                )
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                self.transport_errors[type(exc).__name__] += 1
                await asyncio.sleep(0.1 * 2**attempt)
                continue
            self.statuses[status] += 1
            if status >= 500:
                await asyncio.sleep(0.1 * 2**attempt)
                continue
            self.post_ns.append(time.perf_counter_ns() - started)
            answer = json.loads(data)
            if status in (200, 201) and answer.get("status") == "visible":
                self.accepted[conv].append(answer["id"])
            else:
                self.not_stored += 1
            return
        self.not_stored += 1

    async def offer(self, total: int, rate: float) -> dict:
        """`total` sends at `rate` msg/s, each at its time whatever came before (open loop)."""
        tasks = set()
        start = time.monotonic() + 0.05
        for index in range(total):
            await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
            task = asyncio.create_task(self.send(index))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
        return {"seconds": round(time.monotonic() - start, 1)}


class Storm:
    """Every `every` seconds, a `fraction` of the tabs (not already away) are cut and come back
    after a random 0-`max_pause` s pause, retrying with backoff like the page."""

    def __init__(
        self, deployment: Deployment, tabs: list[Tab], every: float, fraction: float, max_pause: float
    ):
        self.deployment, self.tabs = deployment, tabs
        self.every, self.fraction, self.max_pause = every, fraction, max_pause
        self.away: set[str] = set()
        self.cuts = 0
        self.reconnects = 0
        self.failed_attempts: collections.Counter = collections.Counter()
        self.gave_up: list[str] = []
        self.resync_ns: list[int] = []
        self.handshake_ns: list[int] = []  # the successful attempt's connect, up to hello
        self.catch_up_ns: list[int] = []  # then the fetch of what was missed
        self.pending: set[asyncio.Task] = set()

    async def cut_and_return(self, tab: Tab) -> None:
        self.away.add(tab.name)
        try:
            await tab.cut()
            self.cuts += 1
            await asyncio.sleep(random.uniform(0, self.max_pause))
            url, pool = self.deployment.route(tab)
            deadline = time.monotonic() + GIVE_UP_SECONDS
            attempt = 0
            while time.monotonic() < deadline:  # like the page: again and again, backing off
                started = time.perf_counter_ns()
                try:
                    self.handshake_ns.append(await tab.connect(url, pool))
                except Exception as exc:
                    self.failed_attempts[type(exc).__name__] += 1
                    await asyncio.sleep(min(5.0, 0.25 * 2**attempt) * random.uniform(0.5, 1))
                    attempt += 1
                    continue
                connected = time.perf_counter_ns()
                if tab.catching_up is not None:
                    await asyncio.shield(tab.catching_up)
                self.catch_up_ns.append(time.perf_counter_ns() - connected)
                self.resync_ns.append(time.perf_counter_ns() - started)
                self.reconnects += 1
                return
            self.gave_up.append(tab.name)
        finally:
            self.away.discard(tab.name)

    async def run(self, until: asyncio.Future) -> None:
        while not until.done():
            await asyncio.wait([until], timeout=self.every)
            if until.done():
                break
            present = [t for t in self.tabs if t.name not in self.away]
            for tab in random.sample(present, min(len(present), round(len(self.tabs) * self.fraction))):
                task = asyncio.create_task(self.cut_and_return(tab))
                self.pending.add(task)
                task.add_done_callback(self.pending.discard)
        if self.pending:
            await asyncio.gather(*self.pending)


def database_transcripts(conversations: list[int], after: dict[int, int]) -> dict[int, list[int]]:
    """Each conversation's visible messages after the one it started with, in id order."""
    from inbox.models import Message

    out: dict[int, list[int]] = {conv: [] for conv in conversations}
    rows = (
        Message.objects.filter(conversation_id__in=conversations, status=Message.Status.VISIBLE)
        .order_by("conversation_id", "id")
        .values_list("conversation_id", "id")
    )
    for conv, message_id in rows:
        if message_id > after[conv]:
            out[conv].append(message_id)
    return out


def first_messages(conversations: list[int]) -> dict[int, int]:
    from django.db.models import Max

    from inbox.models import Message

    rows = Message.objects.filter(conversation_id__in=conversations).values("conversation_id")
    return {r["conversation_id"]: r["last"] for r in rows.annotate(last=Max("id"))}


def compare(tab: Tab, truth: list[int]) -> dict:
    shown = tab.transcript
    truth_set, shown_set = set(truth), set(shown)
    return {
        "lost": len(truth_set - shown_set),
        "duplicated": len(shown) - len(shown_set),
        "out_of_order": sum(1 for a, b in itertools.pairwise(shown) if b < a),
        "extra": len(shown_set - truth_set),
        "equal": shown == truth,
    }


async def run(
    ctx: Context, messages: int | None = None, rate: float | None = None, pairs_count: int = 50,
    tabs_per_user: int = 2, every: float = 5.0, fraction: float = 0.2, max_pause: float = 3.0,
    drain_seconds: float = 30.0,
) -> Result:  # fmt: skip
    messages = messages or (1000 if ctx.quick else 10_000)
    rate = rate or (messages / 30 if ctx.quick else 50.0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    product = asyncio.create_task(start_servers(ctx, 2))
    await asyncio.to_thread(setup_django, ctx.env)
    pairs = await asyncio.to_thread(create_pairs, pairs_count, ctx.run_tag, prefix="st")
    conversations = [conv for _b, _s, conv in pairs]
    after = await asyncio.to_thread(first_messages, conversations)
    queue_before = await asyncio.to_thread(celery_queue_length, ctx.redis_url)
    deployment = Deployment(await product)
    tabs = []
    for index, (buyer, seller, conv) in enumerate(pairs):
        for tab in range(tabs_per_user):
            # A user's tabs on different processes; a buyer and their seller too.
            tabs.append(Tab(buyer, conv, index + tab, f"b{index}.{tab}"))
            tabs.append(Tab(seller, conv, index + tab + 1, f"s{index}.{tab}"))
    meter = CpuMeter(deployment.pids)
    log(f"storm: {len(tabs)} tabs connecting")
    connected = await connect_clients(deployment, tabs, at_once=50)
    if connected["connected"] != len(tabs):
        raise RuntimeError(f"tabs could not connect: {connected['failures']}")
    sender = Sender(deployment, pairs, as_letters(ctx.run_tag))
    storm = Storm(deployment, tabs, every, fraction, max_pause)
    log(f"storm: {messages} messages at {rate:g} msg/s; every {every:g} s {fraction:.0%} of tabs cut")
    before = meter.snapshot()
    try:
        sending = asyncio.ensure_future(sender.offer(messages, rate))
        await storm.run(sending)
        offered = sending.result()
        cpu = CpuMeter.between(before, meter.snapshot())
        truth = await asyncio.to_thread(database_transcripts, conversations, after)
        # Let the last pushes and catch-ups land; a tab learns of a gap from its next event only.
        started = time.monotonic()
        while time.monotonic() - started < drain_seconds:
            if all(tab.transcript == truth[tab.conv] for tab in tabs):
                break
            await asyncio.sleep(0.2)
        drained = round(time.monotonic() - started, 1)
        await asyncio.gather(*(t.catching_up for t in tabs if t.catching_up), return_exceptions=True)
        results = {tab.name: compare(tab, truth[tab.conv]) for tab in tabs}
        await asyncio.gather(*(t.close() for t in tabs))
    finally:
        deployment.close()
        await asyncio.to_thread(drop_queued_tasks, ctx.redis_url, queue_before)
    totals = {k: sum(r[k] for r in results.values()) for k in ("lost", "duplicated", "out_of_order", "extra")}
    unequal = [name for name, r in results.items() if not r["equal"]]
    stored = sum(len(ids) for ids in truth.values())
    accepted = sum(len(ids) for ids in sender.accepted.values())
    resync = summarize_ns(storm.resync_ns)
    handshake, catch_up = summarize_ns(storm.handshake_ns), summarize_ns(storm.catch_up_ns)
    via = sum((t.applied_via for t in tabs), collections.Counter())
    client_errors = sum((t.errors for t in tabs), collections.Counter())
    figures = {
        "messages": messages,
        "rate_per_s": rate,
        "tabs": len(tabs),
        "pairs": pairs_count,
        "send_seconds": offered["seconds"],
        "stored_in_database": stored,
        "accepted_by_the_api": accepted,
        "not_stored": sender.not_stored,
        "statuses": dict(sender.statuses),
        "transport_errors": dict(sender.transport_errors),
        "post_ms": summarize_ns(sender.post_ns),
        **totals,
        "tabs_unequal": len(unequal),
        "unequal_examples": {name: results[name] for name in unequal[:10]},
        "cuts": storm.cuts,
        "reconnects": storm.reconnects,
        "reconnect_attempts_failed": dict(storm.failed_attempts),
        "tabs_that_gave_up": len(storm.gave_up),
        "resync_ms": resync,
        "resync_handshake_ms": summarize_ns(storm.handshake_ns),
        "resync_catch_up_ms": summarize_ns(storm.catch_up_ns),
        "applied_via": dict(via),
        "dropped_as_already_applied": sum(t.dropped_as_seen for t in tabs),
        "client_errors": dict(client_errors),
        "drain_seconds": drained,
        "cpu": cpu,
    }
    server_errors = sum(n for status, n in sender.statuses.items() if status >= 500)
    met = (
        not any(totals.values())
        and not unequal
        and stored == messages
        and accepted == messages
        and server_errors == 0
        and not storm.gave_up
    )
    rows = [
        Row(
            "R1 reconnect storm: every tab's transcript equals the database's",
            "0 lost, 0 duplicated, 0 out of order",
            f"{messages} messages at {rate:g} msg/s ({offered['seconds']} s), {pairs_count} conversations, "
            f"{len(tabs)} tabs, {storm.reconnects} reconnects after {storm.cuts} cuts "
            f"({fraction:.0%} every {every:g} s, back after 0-{max_pause:g} s): "
            f"stored {stored}, lost {totals['lost']}, duplicated {totals['duplicated']}, "
            f"out of order {totals['out_of_order']}, extra {totals['extra']}, tabs unequal {len(unequal)}; "
            f"{via['socket']} applied from the socket, {via['catch_up']} from the event log; "
            f"statuses {dict(sender.statuses)}; CPU {CpuMeter.shares(cpu)}",
            met,
            figures,
        ),
        Row(
            "R1 reconnect storm: resync time (reconnect start -> caught up)",
            f"p95 < {RESYNC_P95_LIMIT_MS / 1000:g} s",
            f"p50 {resync['p50']} ms, p95 {resync['p95']} ms, p99 {resync['p99']} ms, max {resync['max']} ms "
            f"(n {resync['n']}; of which the handshake p50 {handshake['p50']} / p95 {handshake['p95']} ms, "
            f"the catch-up fetch p50 {catch_up['p50']} / p95 {catch_up['p95']} ms; "
            f"failed attempts {dict(storm.failed_attempts) or 0})",
            resync["p95"] is not None and resync["p95"] < RESYNC_P95_LIMIT_MS,
            resync,
        ),
    ]
    return Result(rows, {})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 messages in about 30 s")
    parser.add_argument("--messages", type=int, help="default 10000 (1000 with --quick)")
    parser.add_argument("--rate", type=float, help="msg/s (default 50; messages/30 with --quick)")
    parser.add_argument("--pairs", type=int, default=50, help="conversations (default 50)")
    parser.add_argument("--tabs", type=int, default=2, help="tabs per user (default 2)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between cuts (default 5)")
    parser.add_argument("--fraction", type=float, default=0.2, help="share of tabs cut each time (0.2)")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    return run_standalone(
        NAME, run, quick=args.quick, keep_logs=args.keep_logs, messages=args.messages, rate=args.rate,
        pairs_count=args.pairs, tabs_per_user=args.tabs, every=args.every, fraction=args.fraction,
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
