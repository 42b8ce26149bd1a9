from django.utils import timezone

from workbench.realtime import session_group, user_group
from workbench.sockets import JsonSocket


class PingConsumer(JsonSocket):
    """`ws/ping/`: an authenticated liveness check for the websocket stack (auth, origin check,
    routing) — handy behind a new proxy, and the smallest thing the websocket test helper drives.
    Like every socket it closes when its session logs out or the account signs out everywhere."""

    async def connect(self):
        user = self.scope.get("user")
        self.groups_joined: list[str] = []
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.accept()
        groups = [user_group(user.pk)]
        session = self.scope.get("session")
        if session is not None and session.session_key:
            groups.append(session_group(session.session_key))
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = groups

    async def disconnect(self, code):
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def session_ended(self, event):
        await self.close(code=4401)

    async def access_changed(self, event):
        pass  # nothing here depends on a team

    async def receive_json(self, content, **kwargs):
        if content["type"] != "ping":
            await self.send_error("bad_request", 'Send {"type": "ping"}.', content)
            return
        await self.send_json(
            {"type": "pong", "user": self.scope["user"].username, "at": timezone.now().isoformat()}
        )
