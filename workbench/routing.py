"""All websocket routes. Each app that has consumers adds its patterns here."""

from django.urls import path

from chats.routing import websocket_urlpatterns as chat_patterns
from playground.routing import websocket_urlpatterns as playground_patterns
from workbench.consumers import PingConsumer

websocket_urlpatterns = [
    path("ws/ping/", PingConsumer.as_asgi(), name="ws-ping"),
    *chat_patterns,
    *playground_patterns,
]
