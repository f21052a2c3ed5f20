import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from inbox.routing import websocket_urlpatterns  # noqa: E402
from marketplace.websocket_auth import BearerTokenMiddleware, OriginCheckMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginCheckMiddleware(BearerTokenMiddleware(URLRouter(websocket_urlpatterns))),
    }
)
