import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
# Django must be set up before importing consumers (they import models).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from providers import tokens  # noqa: E402
from providers.adapters import preload  # noqa: E402
from workbench.lean import HttpDispatch, LeanHandler  # noqa: E402
from workbench.origins import SameOriginOnly  # noqa: E402
from workbench.routing import websocket_urlpatterns  # noqa: E402

preload()  # SDK imports at start-up, not inside the first model call's timeouts
tokens.preload()  # the tokenizer loads in its own thread (about a second), not in a first count

application = ProtocolTypeRouter(
    {
        # Gateway and token-authenticated completions skip the browser middleware (lean.py).
        "http": HttpDispatch(django_asgi_app, LeanHandler()),
        # Every websocket route: the full Origin (scheme, host, port) as CSRF checks it.
        "websocket": SameOriginOnly(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
