from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils import timezone


class PingConsumer(AsyncJsonWebsocketConsumer):
    """`ws/ping/`: an authenticated liveness check for the websocket stack (auth, origin check,
    routing) — handy behind a new proxy, and the smallest thing the websocket test helper drives."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.accept()

    async def receive_json(self, content, **kwargs):
        if content.get("type") != "ping":
            await self.send_json(
                {"type": "error", "code": "bad_request", "message": 'Send {"type": "ping"}.'}
            )
            return
        await self.send_json(
            {"type": "pong", "user": self.scope["user"].username, "at": timezone.now().isoformat()}
        )
