"""REST for chats: conversations, the message tree, posting (JSON or SSE), stop, fork.

A posted message starts the same reply runner the websocket uses: it finishes and is saved
even if the HTTP client goes away."""

from __future__ import annotations

import asyncio
import contextlib
import json

from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError
from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, mixins, status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from accounts import selectors as account_selectors
from accounts.access import Action
from chats import attachments, frames, grounding, replies, selectors, services, streaming
from chats.models import Message
from chats.serializers import (
    AttachmentSerializer,
    AttachmentUploadSerializer,
    CollectionAttachSerializer,
    ConversationCollectionSerializer,
    ConversationCreateSerializer,
    ConversationSerializer,
    ConversationWriteSerializer,
    ForkSerializer,
    MessagePostSerializer,
    MessageSerializer,
)
from providers.api import EventStreamNegotiation
from workbench import connections


@contextlib.contextmanager
def _not_found_names(field: str):
    """A message id that isn't in this conversation is a 404 that names the payload field."""
    try:
        yield
    except Http404:
        raise NotFound({field: "No message with this id in this conversation."}) from None


def _changes(data: dict) -> dict:
    changes = dict(data)
    if "params" in changes:
        changes["params"] = {k: v for k, v in changes["params"].items() if v is not None}
    return changes


class ConversationListView(mixins.ListModelMixin, generics.GenericAPIView):
    serializer_class = ConversationSerializer

    def get_queryset(self):
        params = self.request.query_params
        team = (
            account_selectors.team_for_user(user=self.request.user, pk=params["team"])
            if params.get("team")
            else None
        )
        return selectors.conversations_for_user(
            user=self.request.user, team=team, q=params.get("q", "")
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "team", OpenApiTypes.INT, description="Also list this team's conversations."
            ),
            OpenApiParameter("q", OpenApiTypes.STR, description="Search titles and message text."),
        ]
    )
    def get(self, request):
        return self.list(request)

    @extend_schema(request=ConversationCreateSerializer, responses={201: ConversationSerializer})
    def post(self, request):
        data = ConversationCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        conversation = services.conversation_start(
            actor=request.user, **_changes(data.validated_data)
        )
        return Response(ConversationSerializer(conversation).data, status=status.HTTP_201_CREATED)


class ConversationDetailView(generics.GenericAPIView):
    serializer_class = ConversationSerializer

    def get(self, request, pk):
        return Response(
            ConversationSerializer(selectors.conversation_for_user(user=request.user, pk=pk)).data
        )

    @extend_schema(request=ConversationWriteSerializer)
    def patch(self, request, pk):
        conversation = selectors.conversation_for_user(
            user=request.user, pk=pk, action=Action.WRITE
        )
        data = ConversationWriteSerializer(
            data=request.data, context={"request": request}, partial=True
        )
        data.is_valid(raise_exception=True)
        services.conversation_update(
            actor=request.user, conversation=conversation, **_changes(data.validated_data)
        )
        return Response(ConversationSerializer(conversation).data)

    def delete(self, request, pk):
        conversation = selectors.conversation_for_user(user=request.user, pk=pk)
        services.conversation_delete(actor=request.user, conversation=conversation)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


def _message_json(message_id: int) -> dict:
    return MessageSerializer(Message.objects.get(pk=message_id)).data


class MessageListView(generics.GenericAPIView):
    serializer_class = MessageSerializer
    content_negotiation_class = EventStreamNegotiation

    @extend_schema(
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="`{messages, visible_path}`: every message of every branch with its parent, and the ids on the visible path.",
            )
        }
    )
    def get(self, request, pk):
        """The whole tree: every branch, each message with its parent."""
        conversation = selectors.conversation_for_user(user=request.user, pk=pk)
        replies.replies_mark_stale(conversation_id=conversation.pk, running=streaming.running_ids())
        view = selectors.conversation_view(conversation=conversation)
        messages = conversation.messages.order_by("created_at", "id")
        return Response(
            {
                "messages": MessageSerializer(messages, many=True).data,
                "visible_path": [e.message.pk for e in view.entries],
            }
        )

    @extend_schema(
        request=MessagePostSerializer,
        responses={
            201: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="`{user_message, reply}` once the reply is saved; with `stream: true` a "
                "`text/event-stream` of `started` (`{user_message, reply}`), `reasoning` and `delta` (`{text, offset}`) and one "
                "`finished` (the saved reply, any status).",
            )
        },
    )
    def post(self, request, pk):
        """Post a message and get the reply (JSON, or SSE with `stream: true`)."""
        conversation = selectors.conversation_for_user(user=request.user, pk=pk, action=Action.USE)
        data = MessagePostSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        parent_id = data.validated_data.get("parent_id", "leaf")
        if parent_id == "leaf":
            parent_id = selectors.conversation_view(conversation=conversation).leaf_id
        with _not_found_names("parent_id"):
            plan = services.message_send(
                actor=request.user,
                conversation=conversation,
                parent_id=parent_id,
                content=data.validated_data["content"],
            )
        if data.validated_data["stream"]:
            return StreamingHttpResponse(
                _reply_events(plan),
                content_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        async_to_sync(_run_to_end)(plan)
        return Response(
            {
                "user_message": _message_json(plan.created[0]),
                "reply": _message_json(plan.message_id),
            },
            status=status.HTTP_201_CREATED,
        )


async def _run_to_end(plan) -> None:

    started = await connections.hop(frames.started_frame)(plan)
    reply = await streaming.begin(plan, started=started, render=frames.final_fields)
    await asyncio.shield(reply.task)


async def _reply_events(plan):
    """SSE for one reply. The reply is the runner's: if this client goes away, it goes on."""
    queue: asyncio.Queue = asyncio.Queue()

    async def listen(frame: dict) -> None:
        if frame.get("id") == plan.message_id or frame.get("reply") == plan.message_id:
            queue.put_nowait(frame)

    streaming.hub.subscribe(plan.conversation_id, listen)
    try:
        started = await connections.hop(frames.started_frame)(plan)
        await streaming.begin(plan, started=started, render=frames.final_fields)
        while True:
            frame = await queue.get()
            if frame["type"] == "started":
                yield _sse("started", {"user_message": plan.created[0], "reply": plan.message_id})
            elif frame["type"] == "delta":
                yield _sse("delta", {"text": frame["text"], "offset": frame["offset"]})
            elif frame["type"] == "reasoning":
                yield _sse("reasoning", {"text": frame["text"], "offset": frame["offset"]})
            elif frame["type"] == "final":
                yield _sse("finished", await connections.hop(_message_json)(plan.message_id))
                return
    finally:
        streaming.hub.unsubscribe(plan.conversation_id, listen)


class StopView(generics.GenericAPIView):
    serializer_class = MessageSerializer

    @extend_schema(
        request=None,
        responses={202: OpenApiResponse(OpenApiTypes.OBJECT, description="`{stopping: true}`")},
    )
    def post(self, request, pk, message_id):
        """Stop a running reply: its text so far is kept as `stopped`."""
        conversation = selectors.conversation_for_user(user=request.user, pk=pk, action=Action.USE)
        message_id = services.message_for_stop(conversation=conversation, message_id=message_id)
        async_to_sync(streaming.stop)(message_id)
        return Response({"stopping": True}, status=status.HTTP_202_ACCEPTED)


class ForkView(generics.GenericAPIView):
    serializer_class = ConversationSerializer

    @extend_schema(request=ForkSerializer, responses={201: ConversationSerializer})
    def post(self, request, pk):
        """A new conversation with the path up to `message_id`."""
        conversation = selectors.conversation_for_user(
            user=request.user, pk=pk, action=Action.WRITE
        )
        data = ForkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with _not_found_names("message_id"):
            fork = services.conversation_fork(
                actor=request.user,
                conversation=conversation,
                message_id=data.validated_data["message_id"],
            )
        return Response(ConversationSerializer(fork).data, status=status.HTTP_201_CREATED)


class ConversationCollectionListView(generics.GenericAPIView):
    serializer_class = ConversationCollectionSerializer
    pagination_class = None  # a plain list: at most grounding.MAX_LINKED

    @extend_schema(responses={200: ConversationCollectionSerializer(many=True)})
    def get(self, request, pk):
        """The collections this conversation's replies retrieve from."""
        conversation = selectors.conversation_for_user(user=request.user, pk=pk)
        linked = grounding.conversation_collections(conversation=conversation)
        return Response(ConversationCollectionSerializer(linked, many=True).data)

    @extend_schema(
        request=CollectionAttachSerializer, responses={201: ConversationCollectionSerializer}
    )
    def post(self, request, pk):
        """Attach a collection: new replies retrieve from it and cite its chunks."""
        conversation = selectors.conversation_for_user(
            user=request.user, pk=pk, action=Action.WRITE
        )
        data = CollectionAttachSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            collection = grounding.collection_attach(
                actor=request.user,
                conversation=conversation,
                collection_id=data.validated_data["collection_id"],
            )
        except Http404:
            raise NotFound({"collection_id": "No such collection, or you can't see it."}) from None
        return Response(
            ConversationCollectionSerializer(collection).data, status=status.HTTP_201_CREATED
        )


class ConversationCollectionDetailView(generics.GenericAPIView):
    serializer_class = ConversationCollectionSerializer

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk, collection_id):
        """Detach a collection (its documents stay where they are)."""
        conversation = selectors.conversation_for_user(
            user=request.user, pk=pk, action=Action.WRITE
        )
        grounding.collection_detach(
            actor=request.user, conversation=conversation, collection_id=collection_id
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class AttachmentListView(generics.GenericAPIView):
    serializer_class = AttachmentSerializer
    parser_classes = [MultiPartParser]
    pagination_class = None  # a plain list

    @extend_schema(
        operation_id="conversations_attachments_list",
        responses={200: AttachmentSerializer(many=True)},
    )
    def get(self, request, pk):
        """Attachments of this conversation you can see: sent ones, and your pending ones."""
        conversation = selectors.conversation_for_user(user=request.user, pk=pk)
        rows = attachments.attachments_visible(user=request.user, conversation=conversation)
        return Response(AttachmentSerializer(rows, many=True).data)

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "file": {"type": "array", "items": {"type": "string", "format": "binary"}}
                },
            }
        },
        responses={
            201: AttachmentUploadSerializer,
            # Everything refused (each with its reason), or a body that isn't an upload at all.
            400: {
                "oneOf": [
                    {"$ref": "#/components/schemas/AttachmentUpload"},
                    {"$ref": "#/components/schemas/Error"},
                ]
            },
        },
        description="Attach files to your next message in this conversation (one or more "
        "`file` parts): images are re-encoded, documents read into the conversation's files "
        "collection. 201 when anything was attached; 400 when everything was refused. Each "
        "refusal has its reason.",
    )
    def post(self, request, pk):
        conversation = selectors.conversation_for_user(user=request.user, pk=pk, action=Action.USE)
        files = request.FILES.getlist("file")
        refused = [
            {"name": name, "reason": reason}
            for name, reason in getattr(request._request, "upload_refused", {}).items()
        ]
        added = []
        for upload in files:
            try:
                added.append(
                    attachments.attachment_add(
                        actor=request.user,
                        conversation=conversation,
                        filename=upload.name,
                        data=upload.read(),
                    )
                )
            except ValidationError as exc:
                refused.append({"name": upload.name[:255], "reason": " ".join(exc.messages)})
        if not files and not refused:
            refused.append({"name": "", "reason": "Send one or more `file` parts."})
        body = {"attached": AttachmentSerializer(added, many=True).data, "refused": refused}
        return Response(body, status=status.HTTP_201_CREATED if added else 400)


class AttachmentDetailView(generics.GenericAPIView):
    serializer_class = AttachmentSerializer

    def get(self, request, pk, attachment_id):
        conversation = selectors.conversation_for_user(user=request.user, pk=pk)
        attachment = attachments.attachment_for_user(
            user=request.user, conversation=conversation, attachment_id=attachment_id
        )
        return Response(AttachmentSerializer(attachment).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk, attachment_id):
        """Remove one of your pending attachments (sent ones stay with their message)."""
        conversation = selectors.conversation_for_user(user=request.user, pk=pk, action=Action.USE)
        attachments.attachment_remove(
            actor=request.user, conversation=conversation, attachment_id=attachment_id
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
