from django.urls import path

from playground.consumers import BattleConsumer, ComparisonConsumer

websocket_urlpatterns = [
    path("ws/playground/<int:comparison_id>/", ComparisonConsumer.as_asgi(), name="ws-playground"),
    path("ws/arena/<int:battle_id>/", BattleConsumer.as_asgi(), name="ws-arena"),
]
