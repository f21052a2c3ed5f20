"""Receivers connected in InboxConfig.ready(): access taken away closes the sockets using it."""

from .events import close_sockets


def on_access_revoked(sender, *, user_id, credential, **kwargs):
    close_sockets(user_id, credential=credential)


def on_user_logged_out(sender, request, user, **kwargs):
    if user is not None and request.session.session_key:
        close_sockets(user.pk, credential=f"session:{request.session.session_key}")
