"""The transactional outbox: every Celery task and every channel-layer message that must follow a
write is recorded in the writing transaction, and published from there (docs/ARCHITECTURE.md,
"The outbox").

Right after the commit the process that wrote the entries publishes them itself (the fast path).
If it dies first, or Redis or the broker is unreachable, the entries stay in the table and the
relay (`manage.py relay_outbox`) publishes them. Entries are claimed with
`SELECT … FOR UPDATE SKIP LOCKED` and leased, so two publishers never take the same entry; an
entry is deleted only after it was published, so delivery is at least once — Celery tasks are
idempotent and sockets drop events whose cursor they already hold.
"""

import logging
import threading
import time
from datetime import timedelta
from functools import partial

from celery import current_app
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from marketplace.layer_sends import run_layer_sends

from .models import Entry

logger = logging.getLogger(__name__)


def enqueue_task(name: str, *args, countdown: int = 0) -> None:
    """Queue the Celery task `name` (its registered name) with JSON-serialisable `args` once the
    current transaction commits. `countdown` counts from now, not from publication."""
    _record(Entry.Kind.TASK, {"name": name, "args": list(args), "eta": time.time() + countdown})


def enqueue_group_sends(messages: list[tuple[str, dict]]) -> None:
    """Send each (group, message) over the channel layer once the current transaction commits."""
    if messages:
        _record(Entry.Kind.GROUP_SEND, {"messages": [[group, message] for group, message in messages]})


def _record(kind: str, payload: dict) -> None:
    entry = Entry.objects.create(kind=kind, payload=payload)
    _unpublished_ids().append(entry.pk)
    # One hook per entry, so that each is discarded with its savepoint if that rolls back. The
    # first hook to run after the commit publishes every entry written so far on this
    # connection in one claim, one channel-layer hop and one DELETE; the others find nothing
    # left. Ids of rolled-back entries may be among them: the claim finds no such rows.
    # A function, not a partial: Django logs a failing robust hook by its __qualname__, and a
    # partial has none (the logging itself then raised, and the send answered 500).
    transaction.on_commit(publish_now, robust=True)


def publish_now() -> None:
    ids = _unpublished_ids()
    if ids:
        taken = ids[:]
        ids.clear()
        relay(ids=taken, limit=len(taken))


def _unpublished_ids() -> list[int]:
    """Entries this connection (so this thread) wrote and has not published yet."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    if not hasattr(wrapper, "outbox_unpublished_ids"):
        wrapper.outbox_unpublished_ids = []
    return wrapper.outbox_unpublished_ids


def relay(*, ids: list[int] | None = None, limit: int = 200) -> int:
    """Publish due entries — the given ones, or the oldest — and delete those published. Entries
    that fail wait a little and are tried again by the relay. Returns how many were published."""
    entries = _claim(ids=ids, limit=limit)
    if not entries:
        return 0
    published, failed = _publish(entries)
    if published:
        Entry.objects.filter(pk__in=published).delete()
    now = timezone.now()
    for entry, error in failed:
        wait = min(entry.attempts, settings.OUTBOX_RETRY_MAX_SECONDS)
        Entry.objects.filter(pk=entry.pk).update(
            available_at=now + timedelta(seconds=wait), last_error=error[:2000]
        )
    return len(published)


def _claim(*, ids: list[int] | None, limit: int) -> list[Entry]:
    """Take due entries in one statement: locked rows are skipped (another publisher has them),
    and the taken ones are leased, so that if this process dies while publishing, the relay
    takes them again when the lease ends."""
    if ids == []:
        return []
    table = Entry._meta.db_table
    only = f"AND id IN ({', '.join(['%s'] * len(ids))})" if ids else ""
    lock = "FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    now = timezone.now()
    lease_ends = now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    as_db = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET available_at = %s, attempts = attempts + 1 WHERE id IN ("  # noqa: S608
            f"SELECT id FROM {table} WHERE available_at <= %s {only} ORDER BY id LIMIT %s {lock}"
            ") RETURNING id, kind, payload, attempts",
            [as_db(lease_ends), as_db(now), *(ids or []), limit],
        )
        rows = cursor.fetchall()
    as_json = partial(Entry._meta.get_field("payload").from_db_value, expression=None, connection=connection)
    entries = [
        Entry(pk=pk, kind=kind, payload=as_json(payload), attempts=attempts)
        for pk, kind, payload, attempts in rows
    ]
    return sorted(entries, key=lambda entry: entry.pk)


def _publish(entries: list[Entry]) -> tuple[list[int], list[tuple[Entry, str]]]:
    """Publish in id order. After the first failure of a transport the rest of its entries are
    not tried (it is down; each try could wait for a timeout): they fail with the same error."""
    published, failed = [], []
    sends = [entry for entry in entries if entry.kind == Entry.Kind.GROUP_SEND]
    tasks = [entry for entry in entries if entry.kind == Entry.Kind.TASK]
    if sends:
        sent, error = _send_to_layer(sends)
        published += [entry.pk for entry in sends[:sent]]
        failed += [(entry, error) for entry in sends[sent:]]
    error = ""
    for entry in tasks:
        if not error:
            error = _queue_task(entry)
        if error:
            failed.append((entry, error))
        else:
            published.append(entry.pk)
    return published, failed


def _send_to_layer(entries: list[Entry]) -> tuple[int, str]:
    """Returns how many entries were sent, in order, and the error that stopped the rest."""
    layer = get_channel_layer()
    if layer is None:
        return len(entries), ""
    sent = 0

    async def send_all():
        nonlocal sent
        for entry in entries:
            for group, message in entry.payload["messages"]:
                await layer.group_send(group, message)
            sent += 1

    try:
        run_layer_sends(layer, send_all)
    except Exception as error:
        logger.warning("channel layer unreachable; %s outbox entries wait for the relay", len(entries) - sent)
        return sent, f"channel layer: {error!r}"
    return sent, ""


def _queue_task(entry: Entry) -> str:
    """Queue one task; returns the error, or "" when it was queued."""
    task = _task_named(entry.payload["name"])
    args = entry.payload["args"]
    countdown = max(0.0, entry.payload["eta"] - time.time()) or None
    if current_app.conf.task_always_eager:
        # No broker (development, tests): the task runs here and now. Its failure is the task's,
        # as on a worker, not a failure to publish.
        try:
            task.apply_async(args, countdown=countdown)
        except Exception:
            logger.exception("task %s failed", entry.payload["name"])
        return ""
    try:
        # No publish retries: a request must not wait for a broker that is down; the relay retries.
        task.apply_async(args, countdown=countdown, retry=False)
    except Exception as error:
        logger.warning("broker unreachable; task %s waits for the relay", entry.payload["name"])
        return f"broker: {error!r}"
    return ""


_importing_tasks = threading.Lock()


def _task_named(name: str):
    if name not in current_app.tasks:
        # The apps' tasks modules are imported on first need, as a worker does at start. One
        # thread at a time: while one imports, Celery's autodiscovery returns at once in any
        # other, which then found no task (NotRegistered) on a fresh process's first sends.
        with _importing_tasks:
            if name not in current_app.tasks:
                current_app.loader.import_default_modules()
    return current_app.tasks[name]


def backlog() -> int:
    """Entries not yet published (the relay's queue)."""
    return Entry.objects.count()
