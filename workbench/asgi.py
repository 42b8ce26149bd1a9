import asyncio
import os
import sys

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


def _save_live_work_before_shutdown() -> None:
    """Under Daphne, a SIGTERM (the run command's own stop, systemd, Ctrl-C) stops the reactor.
    Before it does, Twisted waits for this trigger: every reply this process is writing ends
    `interrupted` with all the text it received, saved, and every model call still running
    settles its usage row — instead of vanishing with the process. Daphne's own trigger cancels
    the HTTP requests in flight meanwhile (their calls settle the same way)."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or not hasattr(reactor, "addSystemEventTrigger"):
        return  # not under Daphne (tests import the application in-process)
    from twisted.internet import defer

    from chats import streaming
    from providers import gate

    async def stop() -> None:
        async with asyncio.timeout(8):  # `serve` kills its children after 10 s
            await streaming.shutdown()
            await gate.shutdown()

    def before_shutdown():
        gate.shutting_down()  # at once: Daphne's trigger cancels requests right after ours
        return defer.Deferred.fromFuture(asyncio.ensure_future(stop()))

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)


_save_live_work_before_shutdown()
