import pytest

from inbox.services import messaging


@pytest.fixture
def everyone_online(monkeypatch):
    """Everyone has a tab open, so no "new message" notification (and its notification.created
    event) joins the message events in the log: for tests of the log itself. Someone away gets
    one per message (tests/notifications/test_kinds.py)."""
    monkeypatch.setattr(messaging, "online_user_ids", lambda user_ids: set(user_ids))
