"""The chat websocket: `ws/chat/<conversation_id>/`. Thin: check access, call one service, hand
the reply to the runner. Checked on connect and on every message; viewers may watch but every
mutating message is refused; closes when the session logs out or access is lost."""

from __future__ import annotations

import asyncio
import contextlib
import json

from channels.db import database_sync_to_async
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.template.loader import render_to_string

from accounts import access
from accounts.access import Action
from chats import frames, replies, selectors, services, streaming
from chats.forms import SettingsForm
from chats.progressive import ProgressiveRender
from workbench import connections
from workbench.realtime import session_group, user_group
from workbench.sockets import JsonSocket, ref_of

MUTATIONS = {"send", "edit", "regenerate", "retry", "continue", "stop", "fork"}
# Daphne drops (and closes the socket on) any websocket message over 1 MiB. A frame longer than
# FRAME_LIMIT characters (JSON as Channels encodes it: ASCII) goes out as `part` frames of PIECE
# characters, which the page joins (chat.js); escaping a piece as a JSON string at most doubles
# it, so every message stays under 1 MiB whatever the reply.
FRAME_LIMIT = 512 * 1024
PIECE = 256 * 1024


class ChatConsumer(JsonSocket):
    # Ids read from each message type: every one must be a message of this conversation (the
    # access matrix has a case for each).
    ID_FIELDS = {
        "send": ("parent_id", "settings.model_choice"),
        "edit": ("message_id", "settings.model_choice"),
        "regenerate": ("message_id", "settings.model_choice"),
        "retry": ("message_id", "settings.model_choice"),
        "continue": ("message_id",),
        "stop": ("message_id",),
        "switch": ("message_id",),
        "fork": ("message_id",),
    }

    async def send_json(self, content, close=False):
        """Every frame, bounded: a big one (a long reply's final HTML, a catch-up of a long
        conversation) is sent in `part` frames, one after the other — a lock keeps another
        frame from landing between them."""
        text = await self.encode_json(content)
        lock = self.__dict__.setdefault("_send_lock", asyncio.Lock())
        async with lock:
            if len(text) <= FRAME_LIMIT:
                await self.send(text_data=text, close=close)
                return
            pieces = range(0, len(text), PIECE)
            for start in pieces:
                last = start + PIECE >= len(text)
                part = {"type": "part", "last": last, "data": text[start : start + PIECE]}
                await self.send(text_data=json.dumps(part), close=close and last)

    async def connect(self):
        self.user = self.scope.get("user")
        self.conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        self.groups_joined: list[str] = []
        # Frames that arrive before the hello is out wait here, so none is lost or overtaken.
        self._held: list[dict] | None = []
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=4401)
            return
        try:
            await database_sync_to_async(self._check_and_tidy)()
        except Http404:
            await self.close(code=4404)
            return
        await self.accept()
        session = self.scope.get("session")
        groups = [user_group(self.user.pk)]
        if session is not None and session.session_key:
            groups.append(session_group(session.session_key))
        if streaming._layer_reaches_other_processes():
            groups.append(streaming.group_name(self.conversation_id))
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = groups
        await self._say_hello()

    def _check_and_tidy(self) -> None:
        conversation = selectors.conversation_for_user(user=self.user, pk=self.conversation_id)
        replies.replies_mark_stale(conversation_id=conversation.pk, running=streaming.running_ids())

    async def _say_hello(self) -> None:
        """Subscribe first, then describe the replies in flight: nothing published from here on
        is missed (it is held until the hello is out), and nothing before it is needed."""
        streaming.hub.subscribe(self.conversation_id, self._local_frame)
        local = [r for r in streaming.RUNNING.values() if r.conversation_id == self.conversation_id]
        snapshots = [reply.snapshot() for reply in local]
        finals = [reply.final_frame for reply in local if reply.final_frame is not None]
        # Replies the database says are streaming but this process doesn't run: another
        # process's (their frames come through the layer). A reply that ended just before we
        # subscribed is in neither list; the page notices and asks for a catch-up.
        others = await database_sync_to_async(self._not_running_here)({r.message_id for r in local})
        await self.send_json(
            {"type": "hello", "conversation": self.conversation_id, "snapshots": snapshots + others}
        )
        for frame in finals:
            await self.send_json(frame)
        held, self._held = self._held, None
        for frame in held:
            await self.send_json(frame)

    def _not_running_here(self, running_here: set[int]) -> list[dict]:
        from chats.models import Message, MessageStatus

        streaming_elsewhere = Message.objects.filter(
            conversation_id=self.conversation_id, status=MessageStatus.STREAMING
        ).exclude(pk__in=running_here)
        # Their checkpointed text, rendered here; the frames that follow from the process that
        # runs them (through the channel layer) carry its renderings.
        return [
            {
                "type": "snapshot",
                "id": m.pk,
                "text": m.content,
                "offset": len(m.content),
                "html": ProgressiveRender().update(m.content),
                **({"reasoning": m.reasoning} if m.reasoning else {}),
            }
            for m in streaming_elsewhere
        ]

    def _hello(self) -> dict:
        """The hello as a catch-up (`sync`) sends it: the replies in flight, from here or not."""
        local = [r for r in streaming.RUNNING.values() if r.conversation_id == self.conversation_id]
        others = self._not_running_here({r.message_id for r in local})
        return {
            "type": "hello",
            "conversation": self.conversation_id,
            "snapshots": [r.snapshot() for r in local] + others,
        }

    async def disconnect(self, code):
        streaming.hub.unsubscribe(self.conversation_id, self._local_frame)
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        # Replies keep running: they finish and are saved whether anyone watches or not.

    async def _local_frame(self, frame: dict) -> None:
        if self._held is not None:
            self._held.append(frame)
            return
        await self.send_json(frame)

    # --- Frames from other processes and account events -----------------------------------------

    async def chat_frame(self, event):
        if event.get("origin") != streaming.PROCESS_ID:  # local watchers got it from the hub
            await self.send_json(event["frame"])

    async def session_ended(self, event):
        await self.close(code=4401)

    async def access_changed(self, event):
        try:
            await database_sync_to_async(selectors.conversation_for_user)(
                user=self.user, pk=self.conversation_id
            )
        except Http404:
            await self.close(code=4403)

    # --- Messages from the browser ------------------------------------------------------------------

    async def receive_json(self, content, **kwargs):
        kind = content["type"]  # JsonSocket: always a string
        handler = (
            getattr(self, f"do_{kind}", None)
            if kind in MUTATIONS | {"switch", "sync", "ping"}
            else None
        )
        if handler is None:
            await self._error("bad_request", "Unknown message type.", content)
            return
        try:
            await handler(content)
        except Http404:
            fields = self.ID_FIELDS.get(kind, ())
            await self._error(
                "not_found",
                # The field that held the id, when the message has one (ids reveal nothing else).
                f"{fields[0]}: no such message in this conversation, or you can't see it."
                if len(fields) == 1 and content.get(fields[0]) is not None
                else "That conversation or message does not exist, or you can't see it.",
                content,
            )
        except PermissionDenied:
            await self._error(
                "forbidden", "Your role lets you read this conversation, not change it.", content
            )
        except ValidationError as exc:
            await self._error("invalid", " ".join(exc.messages), content)

    async def _error(self, code: str, message: str, content) -> None:
        await self.send_error(code, message, content)

    async def do_ping(self, content):
        await self.send_json({"type": "pong", "ref": ref_of(content)})

    async def _start(self, action: str, content: dict) -> None:
        # A hop of its own thread pool (workbench.connections): many replies starting at once
        # don't queue in the one thread Channels gives database work.
        plan, started = await connections.hop(self._begin)(action, content)
        await streaming.begin(plan, started=started, render=frames.final_fields)

    def _begin(self, action: str, content: dict):
        # Settings the page hadn't saved apply with the reply or not at all: one transaction.
        # Without them a send is one write (services.message_send), atomic on its own.
        settings = content.get("settings") if action != "continue" else None
        with transaction.atomic() if settings is not None else contextlib.nullcontext():
            return self._begin_reply(action, content, settings)

    def _begin_reply(self, action: str, content: dict, settings):
        conversation = selectors.conversation_for_reply(user=self.user, pk=self.conversation_id)
        if settings is not None:
            self._apply_settings(conversation, settings)
        if action == "send":
            plan = services.message_send(
                actor=self.user,
                conversation=conversation,
                parent_id=_id(content, "parent_id", optional=True),
                content=content.get("content"),
            )
        elif action == "edit":
            plan = services.message_edit(
                actor=self.user,
                conversation=conversation,
                message_id=_id(content, "message_id"),
                content=content.get("content"),
            )
        elif action in ("regenerate", "retry"):
            plan = services.message_regenerate(
                actor=self.user, conversation=conversation, message_id=_id(content, "message_id")
            )
        else:
            plan = services.message_continue(
                actor=self.user, conversation=conversation, message_id=_id(content, "message_id")
            )
        return plan, frames.started_frame(plan, ref=ref_of(content))

    def _apply_settings(self, conversation, settings) -> None:
        """What the page's settings panel shows but hasn't saved yet (system prompt, parameters,
        a model just picked) applies to this reply and is saved with it — or nothing happens."""
        if not isinstance(settings, dict):
            raise ValidationError({"settings": "settings must be an object."})
        fields = ("model_choice", "system_prompt", *services.PARAM_KEYS)
        if settings.get("model_choice") is not None and not isinstance(
            settings["model_choice"], str
        ):  # never silently ignored: the reply would run on another model than the one shown
            raise ValidationError(
                {"settings": 'model_choice is a string: "<credential id>|<model id>".'}
            )
        form = SettingsForm(
            {key: settings[key] for key in fields if isinstance(settings.get(key), str)},
            user=self.user,
        )
        if not form.is_valid():
            raise ValidationError(
                "Settings not applied: "
                + "; ".join(f"{key}: {' '.join(errors)}" for key, errors in form.errors.items())
            )
        data = form.cleaned_data
        changes = {}
        if "system_prompt" in settings:
            changes["system_prompt"] = data["system_prompt"]
        if any(key in settings for key in services.PARAM_KEYS):
            changes["params"] = {key: data.get(key) for key in services.PARAM_KEYS}
        if data.get("model_choice"):
            changes["credential"], changes["model"] = data["model_choice"]
        services.conversation_update(actor=self.user, conversation=conversation, **changes)

    async def do_send(self, content):
        await self._start("send", content)

    async def do_edit(self, content):
        await self._start("edit", content)

    async def do_regenerate(self, content):
        await self._start("regenerate", content)

    async def do_retry(self, content):
        await self._start("retry", content)

    async def do_continue(self, content):
        await self._start("continue", content)

    async def do_stop(self, content):
        message_id = await database_sync_to_async(self._stoppable)(_id(content, "message_id"))
        await streaming.stop(message_id)

    def _stoppable(self, message_id: int) -> int:
        conversation = selectors.conversation_for_user(
            user=self.user, pk=self.conversation_id, action=Action.USE
        )
        return services.message_for_stop(conversation=conversation, message_id=message_id)

    async def do_switch(self, content):
        frame = await database_sync_to_async(self._switch)(
            _id(content, "message_id"), ref_of(content)
        )
        await self.send_json(frame)

    def _switch(self, message_id: int, ref) -> dict:
        conversation = selectors.conversation_for_user(user=self.user, pk=self.conversation_id)
        leaf = services.branch_select(
            actor=self.user, conversation=conversation, message_id=message_id
        )
        view = selectors.conversation_view(conversation=conversation, leaf_id=leaf)
        selectors.with_ratings(view, user=self.user)
        return {
            "type": "path",
            "ref": ref,
            "html": render_to_string("chats/conversation.html#path", {"view": view}),
        }

    async def do_sync(self, content):
        """After a reconnect: the visible path as it is now, then the running replies' text."""
        path, hello = await database_sync_to_async(self._catch_up)(ref_of(content))
        await self.send_json(path)
        await self.send_json(hello)

    def _catch_up(self, ref):
        conversation = selectors.conversation_for_user(user=self.user, pk=self.conversation_id)
        view = selectors.conversation_view(conversation=conversation)
        selectors.with_ratings(view, user=self.user)
        path = {
            "type": "path",
            "ref": ref,
            "html": render_to_string("chats/conversation.html#path", {"view": view}),
        }
        return path, self._hello()

    async def do_fork(self, content):
        url = await database_sync_to_async(self._fork)(_id(content, "message_id"))
        await self.send_json({"type": "forked", "url": url, "ref": ref_of(content)})

    def _fork(self, message_id: int) -> str:
        from django.urls import reverse

        conversation = selectors.conversation_for_user(
            user=self.user, pk=self.conversation_id, action=Action.WRITE
        )
        fork = services.conversation_fork(
            actor=self.user, conversation=conversation, message_id=message_id
        )
        return reverse("chats:detail", args=[fork.pk])


def _id(content: dict, key: str, *, optional: bool = False):
    value = content.get(key)
    if value is None and optional:
        return None
    message_id = access.parse_id(value)
    if message_id is None:
        raise ValidationError({key: f"{key} must be a message id."})
    return message_id
