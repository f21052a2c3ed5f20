"""Run as a script by tests/outbox/test_outbox.py: send messages in a process of its own, each in
its own committed transaction, and print one JSON line: the ids and each send's duration in seconds.

Usage: python tests/outbox/sender.py <conversation id> <sender username> <count> [--die-after-commit]

--die-after-commit: this process never publishes what it wrote (its after-commit publishing is
switched off here, as if it died at that instant every time), and it ends with SIGKILL.
"""

import json
import os
import signal
import sys
import time

import django

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

from inbox.models import Conversation  # noqa: E402
from inbox.services.messaging import send_message  # noqa: E402
from outbox import services as outbox  # noqa: E402

conversation_id, username, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
die = "--die-after-commit" in sys.argv
if die:
    outbox.relay = lambda **kwargs: 0  # the instant between COMMIT and publishing
sender = get_user_model().objects.get(username=username)
conversation = Conversation.objects.get(pk=conversation_id)
ids, seconds = [], []
for number in range(count):
    started = time.monotonic()
    message, _ = send_message(sender=sender, conversation=conversation, body=f"order update number {number}")
    seconds.append(time.monotonic() - started)
    ids.append(message.pk)
print(json.dumps({"ids": ids, "seconds": seconds}), flush=True)
if die:
    os.kill(os.getpid(), signal.SIGKILL)
