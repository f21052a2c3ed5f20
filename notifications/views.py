from django.core import signing
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from marketplace.accounts.models import User

from . import services
from .emails import read_unsubscribe_token
from .models import Kind


@require_http_methods(["GET", "POST"])
def unsubscribe(request, token):
    """The link in every notification email: GET asks, POST stops that kind of email (no login
    needed: the signed token names the user and the kind)."""
    try:
        data = read_unsubscribe_token(token)
        user = User.objects.get(pk=data["user"])
        kind = Kind(data["kind"])
    except (signing.BadSignature, User.DoesNotExist, KeyError, TypeError, ValueError):
        return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=400)
    done = request.method == "POST"
    if done:
        services.unsubscribe(user=user, kind=kind)
    return render(request, "notifications/unsubscribe.html", {"kind": kind, "done": done, "token": token})
