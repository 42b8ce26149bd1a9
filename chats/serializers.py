from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from accounts.access import Action
from accounts.fields import IdField, ScopedPrimaryKeyRelatedField
from accounts.models import Team
from chats.models import Conversation, Message
from providers.models import ProviderCredential


class ConversationSerializer(serializers.ModelSerializer):
    owner = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = [
            "id",
            "title",
            "owner",
            "credential",
            "model",
            "system_prompt",
            "params",
            "cost_total",
            "has_unpriced",
            "message_count",
            "active_root",
            "forked_from",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_owner(self, obj) -> dict:
        if obj.owner_team_id:
            return {"type": "team", "team_id": obj.owner_team_id}
        return {"type": "user", "team_id": None}


class ParamsSerializer(serializers.Serializer):
    temperature = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=2)
    top_p = serializers.FloatField(required=False, allow_null=True, min_value=0.001, max_value=1)
    max_tokens = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=1_000_000
    )
    seed = serializers.IntegerField(
        required=False, allow_null=True, min_value=-(2**63), max_value=2**63 - 1
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Rename and set parameters",
            value={
                "title": "Trip ideas (Japan)",
                "params": {"temperature": 0.7, "max_tokens": 800},
            },
            request_only=True,
        )
    ]
)
class ConversationWriteSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    credential = ScopedPrimaryKeyRelatedField(
        queryset=ProviderCredential.objects.all(),
        action=Action.USE,
        required=False,
        allow_null=True,
    )
    model = serializers.CharField(max_length=200, required=False, allow_blank=True)
    system_prompt = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    params = ParamsSerializer(required=False)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A personal conversation with Echo",
            value={
                "title": "Trip ideas",
                "model": "echo",
                "system_prompt": "You are a concise travel guide.",
                "owner_team": None,
            },
            request_only=True,
        )
    ]
)
class ConversationCreateSerializer(ConversationWriteSerializer):
    owner_team = ScopedPrimaryKeyRelatedField(
        queryset=Team.objects.all(),
        action=Action.USE,
        required=False,
        allow_null=True,
        help_text="Team id; omit for a personal conversation.",
    )


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = [
            "id",
            "parent",
            "role",
            "content",
            "reasoning",
            "reasoning_ms",
            "status",
            "error_code",
            "error_message",
            "model",
            "credential",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
            "tokens_estimated",
            "cost",
            "cost_source",
            "ttft_ms",
            "tokens_per_second",
            "duration_ms",
            "usage",
            "retrieval",
            "created_at",
        ]
        read_only_fields = fields


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Continue the visible path",
            value={"content": "What should I pack for a week in Kyoto?", "stream": False},
            request_only=True,
        )
    ]
)
class MessagePostSerializer(serializers.Serializer):
    content = serializers.CharField(trim_whitespace=False, max_length=200_000)
    parent_id = IdField(
        required=False,
        allow_null=True,
        help_text="The message to answer; omit to continue the visible path.",
    )
    stream = serializers.BooleanField(default=False, help_text="Answer with Server-Sent Events.")


class ForkSerializer(serializers.Serializer):
    message_id = IdField(
        help_text="The last message the new conversation keeps: an id from "
        "GET /api/conversations/{id}/messages/."
    )


class ConversationCollectionSerializer(serializers.Serializer):
    """A collection attached to a conversation (its replies retrieve from it)."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    owner_team = serializers.IntegerField(source="owner_team_id", read_only=True, allow_null=True)


class CollectionAttachSerializer(serializers.Serializer):
    collection_id = serializers.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        help_text="A collection you may read; a team conversation takes only its team's.",
    )


class AttachmentSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    kind = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    size_bytes = serializers.IntegerField(read_only=True)
    media_type = serializers.CharField(read_only=True)
    width = serializers.IntegerField(read_only=True)
    height = serializers.IntegerField(read_only=True)
    message = serializers.IntegerField(source="message_id", read_only=True, allow_null=True)
    document = serializers.IntegerField(source="document_id", read_only=True, allow_null=True)
    document_status = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    thumb_url = serializers.SerializerMethodField()

    def get_document_status(self, obj) -> str | None:
        return obj.document.status if obj.document_id and obj.document else None

    def _file_url(self, obj, variant: str) -> str | None:
        from django.urls import reverse

        if obj.kind != "image":
            return None
        return reverse("chats:attachment", args=[obj.conversation_id, obj.pk, variant])

    def get_url(self, obj) -> str | None:
        return self._file_url(obj, "full")

    def get_thumb_url(self, obj) -> str | None:
        return self._file_url(obj, "thumb")


class AttachmentRefusalSerializer(serializers.Serializer):
    name = serializers.CharField()
    reason = serializers.CharField()


class AttachmentUploadSerializer(serializers.Serializer):
    attached = AttachmentSerializer(many=True)
    refused = AttachmentRefusalSerializer(many=True)
