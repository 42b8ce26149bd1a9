"""The playground's websockets. Thin: check access, call one service, hand the answers to the
runner (playground.runs, on chats.streaming).

- `ws/playground/<comparison_id>/`: run the comparison (the editor's fields ride along, so what
  runs is what the page shows), stop one answer or all, catch up after a reconnect.
- `ws/arena/<battle_id>/`: start the battle, stop an answer, catch up.

Checked on connect and on every message; viewers watch, every mutating message is refused;
sockets close when the session logs out or access is lost."""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.template.loader import render_to_string

from accounts import access
from accounts.access import Action
from chats import streaming
from playground import arena, forms, runs, selectors, services
from playground.models import Answer, AnswerStatus
from workbench.realtime import session_group, user_group
from workbench.sockets import JsonSocket, ref_of


def _id(content: dict, key: str) -> int:
    value = access.parse_id(content.get(key))  # not `true`, "²", "٣" or 5,000 digits
    if value is None:
        raise ValidationError({key: f"{key} must be an id."})
    return value


class _Watching(JsonSocket):
    """What both sockets share: the access check, the hub subscription with a hello that holds
    frames until it is out, account events, and error frames."""

    kind: streaming.Kind
    url_kwarg: str
    COMMANDS: frozenset[str] = frozenset()

    async def connect(self):
        self.user = self.scope.get("user")
        self.topic = self.scope["url_route"]["kwargs"][self.url_kwarg]
        self.groups_joined: list[str] = []
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
        groups = [user_group(self.user.pk)]
        session = self.scope.get("session")
        if session is not None and session.session_key:
            groups.append(session_group(session.session_key))
        if streaming._layer_reaches_other_processes():
            groups.append(self.kind.hub.group(self.topic))
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = groups
        self.kind.hub.subscribe(self.topic, self._local_frame)
        hello = await database_sync_to_async(self._hello)()
        await self.send_json(hello)
        held, self._held = self._held, None
        for frame in held:
            await self.send_json(frame)

    def _check_and_tidy(self) -> None:
        raise NotImplementedError

    def _streaming_here(self):
        """Answers of this topic streaming in the database (this process's or another's)."""
        raise NotImplementedError

    def _hello(self) -> dict:
        local = {
            r.message_id: r for r in self.kind.running.values() if r.conversation_id == self.topic
        }
        snapshots = [r.snapshot() for r in local.values()]
        snapshots += [
            {"type": "snapshot", "id": a.pk, "text": a.text, "offset": len(a.text)}
            for a in self._streaming_here().exclude(pk__in=list(local))
        ]
        return {"type": "hello", "topic": self.topic, "snapshots": snapshots, **self._state()}

    def _state(self) -> dict:
        return {}

    async def disconnect(self, code):
        self.kind.hub.unsubscribe(self.topic, self._local_frame)
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        # Answers keep running: they finish and are saved whether anyone watches or not.

    async def _local_frame(self, frame: dict) -> None:
        if self._held is not None:
            self._held.append(frame)
            return
        await self.send_json(frame)

    async def _remote_frame(self, event):
        if event.get("origin") != streaming.PROCESS_ID:
            await self.send_json(event["frame"])

    async def session_ended(self, event):
        await self.close(code=4401)

    async def access_changed(self, event):
        try:
            await database_sync_to_async(self._check_and_tidy)()
        except Http404:
            await self.close(code=4403)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        handler = getattr(self, f"do_{kind}", None) if kind in self.COMMANDS else None
        if handler is None:
            await self._error("bad_request", "Unknown message type.", content)
            return
        try:
            await handler(content)
        except Http404:
            await self._error(
                "not_found", "That does not exist here, or you can't see it.", content
            )
        except PermissionDenied:
            await self._error(
                "forbidden", "Your role lets you watch here, not run or stop.", content
            )
        except ValidationError as exc:
            await self._error("invalid", " ".join(exc.messages), content)

    async def _error(self, code: str, message: str, content) -> None:
        await self.send_error(code, message, content)

    async def do_ping(self, content):
        await self.send_json({"type": "pong", "ref": ref_of(content)})

    async def _stop(self, answer_ids: list[int]) -> None:
        await runs.stop(answer_ids, kind=self.kind)


class ComparisonConsumer(_Watching):
    kind = runs.COMPARE
    url_kwarg = "comparison_id"
    COMMANDS = frozenset({"run", "stop", "stop_all", "sync", "ping"})
    # Ids read from messages: each must be an answer / run of this comparison.
    ID_FIELDS = {"stop": ("answer_id",), "stop_all": ("run_id",), "run": ("form",)}

    async def compare_frame(self, event):
        await self._remote_frame(event)

    def _comparison(self, action: Action = Action.READ):
        return selectors.comparison_for_user(user=self.user, pk=self.topic, action=action)

    def _check_and_tidy(self) -> None:
        self._comparison()
        latest = selectors.latest_run(comparison=self._comparison())
        if latest is not None and latest.finished_at is None:
            runs.answers_mark_stale(run_id=latest.pk)

    def _streaming_here(self):
        return Answer.objects.filter(run__comparison_id=self.topic, status=AnswerStatus.STREAMING)

    async def do_run(self, content):
        outcome = await database_sync_to_async(self._begin)(content)
        if outcome["type"] == "confirm":
            await self.send_json(outcome)
            return
        plans = outcome.pop("plans")
        await runs.start(plans, kind=self.kind, started=outcome)

    def _begin(self, content: dict) -> dict:
        comparison = self._comparison(Action.USE)
        data = content.get("form")
        if data is not None:
            if not isinstance(data, dict):
                raise ValidationError("form must be an object of the editor's fields.")
            editor = forms.Editor(comparison, user=self.user, data=data)
            forms.raise_for(editor)
            services.comparison_save(actor=self.user, comparison=comparison, **editor.changes())
        try:
            run, plans = services.run_start(
                actor=self.user, comparison=comparison, confirm=content.get("confirm") is True
            )
        except services.NeedsConfirmation as exc:
            return {
                "type": "confirm",
                "ref": ref_of(content),
                "html": render_to_string(
                    "playground/comparison.html#confirm", {"estimate": exc.estimate}
                ),
            }
        view = selectors.run_view(run=run)
        return {
            "type": "run_started",
            "run": run.pk,
            "ref": ref_of(content),
            "html": render_to_string(
                "playground/comparison.html#results", {"run_view": view, "can_use": True}
            ),
            "plans": plans,
        }

    async def do_stop(self, content):
        answer_ids = await database_sync_to_async(self._stoppable)(_id(content, "answer_id"))
        await self._stop(answer_ids)

    def _stoppable(self, answer_id: int) -> list[int]:
        self._comparison(Action.USE)
        answer = selectors.answer_for_user(user=self.user, pk=answer_id, action=Action.USE)
        if answer.run.comparison_id != self.topic:
            raise Http404
        return services.answers_to_stop(actor=self.user, run=answer.run, answer_id=answer.pk)

    async def do_stop_all(self, content):
        answer_ids = await database_sync_to_async(self._all_stoppable)(_id(content, "run_id"))
        await self._stop(answer_ids)

    def _all_stoppable(self, run_id: int) -> list[int]:
        comparison = self._comparison(Action.USE)
        run = selectors.run_for_user(user=self.user, pk=run_id, action=Action.USE)
        if run.comparison_id != comparison.pk:
            raise Http404
        return services.answers_to_stop(actor=self.user, run=run)

    async def do_sync(self, content):
        """After a reconnect: the latest run as it is now, then the answers' live text."""
        results, hello = await database_sync_to_async(self._catch_up)()
        await self.send_json({**results, "ref": ref_of(content)})
        await self.send_json(hello)

    def _catch_up(self):
        comparison = self._comparison()
        latest = selectors.latest_run(comparison=comparison)
        html = (
            render_to_string(
                "playground/comparison.html#results",
                {"run_view": selectors.run_view(run=latest), "can_use": True},
            )
            if latest is not None
            else ""
        )
        return {
            "type": "results",
            "run": latest.pk if latest else None,
            "html": html,
        }, self._hello()


class BattleConsumer(_Watching):
    kind = runs.ARENA
    url_kwarg = "battle_id"
    COMMANDS = frozenset({"start", "stop", "sync", "ping"})
    ID_FIELDS = {"stop": ("answer_id",)}

    async def arena_frame(self, event):
        await self._remote_frame(event)

    def _battle(self, action: Action = Action.READ):
        return selectors.battle_for_user(user=self.user, pk=self.topic, action=action)

    def _check_and_tidy(self) -> None:
        battle = self._battle()
        runs.answers_mark_stale(run_id=battle.run_id)

    def _streaming_here(self):
        return Answer.objects.filter(run__battle=self.topic, status=AnswerStatus.STREAMING)

    def _state(self) -> dict:
        battle = self._battle()
        return {"started": battle.started_at is not None, "voted": battle.is_voted}

    async def do_start(self, content):
        outcome = await database_sync_to_async(self._begin)(content)
        if outcome is not None:
            plans = outcome.pop("plans")
            await runs.start(plans, kind=self.kind, started=outcome)

    def _begin(self, content: dict):
        battle = self._battle(Action.USE)
        plans = arena.battle_start(actor=self.user, battle=battle)
        if not plans:
            return None  # started already (another tab): the hello described it
        answers = list(battle.run.answers.order_by("position"))
        return {
            "type": "battle_started",
            "ref": ref_of(content),
            "html": render_to_string(
                "playground/battle.html#answers", {"answers": answers, "revealed": False}
            ),
            "plans": plans,
        }

    async def do_stop(self, content):
        answer_ids = await database_sync_to_async(self._stoppable)(_id(content, "answer_id"))
        await self._stop(answer_ids)

    def _stoppable(self, answer_id: int) -> list[int]:
        battle = self._battle(Action.USE)
        return services.answers_to_stop(actor=self.user, run=battle.run, answer_id=answer_id)

    async def do_sync(self, content):
        frame, hello = await database_sync_to_async(self._catch_up)()
        await self.send_json({**frame, "ref": ref_of(content)})
        await self.send_json(hello)

    def _catch_up(self):
        battle = self._battle()
        answers = list(battle.run.answers.order_by("position"))
        html = render_to_string(
            "playground/battle.html#answers",
            {"answers": answers, "revealed": battle.is_voted, "battle": battle},
        )
        return {"type": "answers", "html": html}, self._hello()
