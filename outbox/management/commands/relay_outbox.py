import signal
import time

from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from outbox import services


class Command(BaseCommand):
    help = (
        "Publish the outbox: Celery tasks and channel-layer messages whose writer did not publish "
        "them (it died after the commit, or Redis or the broker was down). Runs until stopped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="publish what is due, then exit")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
        parser.add_argument("--batch", type=int, default=200)

    def handle(self, *args, once=False, interval=1.0, batch=200, **options):
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        published = 0
        while not stopping:
            try:
                count = services.relay(limit=batch)
            except DatabaseError as error:
                # PostgreSQL is away: wait and try again with a fresh connection.
                self.stderr.write(f"outbox relay: database unavailable ({error}); retrying")
                close_old_connections()
                count = 0
                time.sleep(interval)
            published += count
            if once and count < batch:
                break
            if count == 0:
                time.sleep(interval)
        if once:
            self.stdout.write(f"published {published}")
