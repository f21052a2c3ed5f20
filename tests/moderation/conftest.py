import pytest

from inbox.services import start_conversation


@pytest.fixture
def conversation(buyer, seller):
    """The buyer opened it (sellers do not write first)."""
    conversation, _message, _created = start_conversation(
        sender=buyer, recipient_username="seller", body="Hello Sam, could you design a logo?"
    )
    return conversation
