"""Test data built the way the product builds it: through the services where it matters."""

import uuid

from django.utils import timezone

from inbox.models import Conversation, Membership, Message
from marketplace.accounts.models import Profile, User
from marketplace.accounts.services import issue_api_token, update_profile

TEST_PASSWORD = "correct-horse-battery-staple"


def make_user(
    username: str,
    *,
    password_hash: str,
    seller: bool = False,
    verified: bool = True,
    display_name: str = "",
    timezone_name: str = "UTC",
    languages: tuple[str, ...] = ("English",),
) -> User:
    """A user whose password is TEST_PASSWORD (a precomputed argon2 hash, to keep tests fast)."""
    user = User.objects.create_user(username=username, email=f"{username}@example.com", password=None)
    user.password = password_hash
    user.email_verified_at = timezone.now() if verified else None
    user.save(update_fields=["password", "email_verified_at"])
    update_profile(
        user=user,
        display_name=display_name or username.title(),
        timezone_name=timezone_name,
        languages=list(languages),
        role=Profile.Role.SELLER if seller else Profile.Role.BUYER,
    )
    user.refresh_from_db()
    return user


def bearer_headers(user) -> dict:
    """Headers for Django's test client carrying a fresh API token of `user`."""
    _token, raw = issue_api_token(user=user)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def pk(user) -> int:
    return user.pk


def make_conversations(user, count: int, *, start: int = 0) -> None:
    """`count` more conversations for `user`, each with one message from the other person (bulk)."""
    others = User.objects.bulk_create(
        [User(username=f"bulk{start + i}", email=f"bulk{start + i}@example.com") for i in range(count)]
    )
    Profile.objects.bulk_create(
        [Profile(user=other, display_name=f"Bulk {other.username}") for other in others]
    )
    now = timezone.now()
    conversations = Conversation.objects.bulk_create(
        [
            Conversation(user_low=min(user, other, key=pk), user_high=max(user, other, key=pk))
            for other in others
        ]
    )  # fmt: skip
    messages = Message.objects.bulk_create(
        [
            Message(conversation=c, sender=other, body=f"hello {i}", client_id=uuid.UUID(int=start + i + 1))
            for i, (c, other) in enumerate(zip(conversations, others, strict=True))
        ]
    )  # fmt: skip
    for conversation, message in zip(conversations, messages, strict=True):
        conversation.last_message, conversation.last_message_at = message, now
    Conversation.objects.bulk_update(conversations, ["last_message", "last_message_at"])
    Membership.objects.bulk_create(
        [
            membership
            for c, other in zip(conversations, others, strict=True)
            for membership in (
                Membership(conversation=c, user=user, other_user=other, unread_count=1, last_message_at=now),
                Membership(conversation=c, user=other, other_user=user, last_message_at=now),
            )
        ]
    )


def buyer_opens_conversation(buyer, seller, body: str = "Hi, is your gig available?") -> Conversation:
    """The conversation the buyer starts with their first message, as a buyer does: a seller may
    write to a buyer only once the buyer wrote (or ordered; moderation.rules.ensure_may_write)."""
    from inbox.services import start_conversation

    conversation, _message, _created = start_conversation(
        sender=buyer, recipient_username=seller.username, body=body
    )
    return conversation


def make_completed_order(buyer, seller):
    """An order between the two taken all the way through, the way users do it."""
    from inbox.services import get_or_create_conversation
    from orders import services as orders

    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    offer = orders.create_offer(
        seller=seller, conversation=conversation, description="A logo", price=50, delivery_days=3
    )
    order = orders.accept_offer(buyer=buyer, offer=offer)
    orders.deliver_order(seller=seller, order=order, message="Here it is")
    return orders.complete_order(buyer=buyer, order=order)
