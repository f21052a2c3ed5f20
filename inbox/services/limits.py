"""How fast one account may send: MESSAGE_RATE_PER_MINUTE messages a minute (marketplace/ratelimit.py).
Beyond it a send is refused with 429 and nothing is stored. The entry points that send on a
person's behalf (the API, the inbox and order pages) call `ensure_send_rate` before the
service; services, seeds and benchmarks that call `send_message` directly are not limited."""

from marketplace.ratelimit import Limit, RateLimited, wait_phrase

from ..models import Message

MESSAGE_SENDS = Limit("messages", "MESSAGE_RATE_PER_MINUTE", "MESSAGE_RATE_WINDOW_SECONDS")


def ensure_send_rate(*, sender, client_id=None) -> None:
    """Count one send for `sender`, or raise RateLimited. A retry of a message already stored
    (same client_id) is not counted: the service answers it with the original, over the limit
    or not."""
    if client_id is not None and Message.objects.filter(sender=sender, client_id=client_id).exists():
        return
    hit = MESSAGE_SENDS.hit(sender.pk)
    if not hit.allowed:
        raise RateLimited(
            f"You can send at most {MESSAGE_SENDS.limit} messages a minute; you can send again in "
            f"{wait_phrase(hit.retry_after)}.",
            retry_after=hit.retry_after,
        )
