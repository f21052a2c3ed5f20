"""How fast one account may send: MESSAGE_RATE_PER_MINUTE messages a minute (marketplace/ratelimit.py).
Beyond it a send is refused with 429 and nothing is stored. The entry points that send on a
person's behalf (the API, the inbox and order pages) pass `rate_limited=True` to
`send_message` / `start_conversation`, which count the send once it is known not to be a retry
of a stored message; seeds, benchmarks and automatic messages are not limited."""

from marketplace.ratelimit import Limit, RateLimited, wait_phrase

MESSAGE_SENDS = Limit("messages", "MESSAGE_RATE_PER_MINUTE", "MESSAGE_RATE_WINDOW_SECONDS")


def ensure_send_rate(*, sender) -> None:
    """Count one send for `sender`, or raise RateLimited."""
    hit = MESSAGE_SENDS.hit(sender.pk)
    if not hit.allowed:
        raise RateLimited(
            f"You can send at most {MESSAGE_SENDS.limit} messages a minute; you can send again in "
            f"{wait_phrase(hit.retry_after)}.",
            retry_after=hit.retry_after,
        )
