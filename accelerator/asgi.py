import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "accelerator.settings")
django.setup(set_prefix=False)  # as get_asgi_application() does; the handler is our own

from accelerator.upload_guard import BodyGuard, StreamingASGIHandler  # noqa: E402

# Bodies too large for their route are refused from their headers; uploads reach their view unread.
django_asgi_app = BodyGuard(StreamingASGIHandler())

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from interactive.proxy import InteractiveProxy  # noqa: E402
from workers.routing import websocket_urlpatterns  # noqa: E402


class InteractiveRouter:
    """Interactive sessions to the proxy (a path under /interactive/, or a session's own host), the rest on."""

    def __init__(self, proxy: InteractiveProxy, other):
        self.proxy, self.other = proxy, other

    async def __call__(self, scope, receive, send):
        app = self.proxy if self.proxy.handles(scope) else self.other
        return await app(scope, receive, send)


# The proxy serves HTTP and websockets alike; it authenticates on its own, checks a websocket's Origin
# itself (a session's host is not one of ALLOWED_HOSTS), and keeps the platform's cookies away from the server.
interactive_proxy = InteractiveProxy()

application = ProtocolTypeRouter(
    {
        "http": InteractiveRouter(interactive_proxy, django_asgi_app),
        "websocket": InteractiveRouter(
            interactive_proxy, AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)
