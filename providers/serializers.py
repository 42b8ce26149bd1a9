from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from accounts import access
from accounts.access import Action
from accounts.fields import ScopedPrimaryKeyRelatedField
from accounts.models import Team
from providers import presets
from providers.keys import mask
from providers.models import ModelAlias, ProviderCredential


class CredentialSerializer(serializers.ModelSerializer):
    """Read shape. The key is never included — only a mask (`sk-…9f3b`)."""

    preset_label = serializers.SerializerMethodField()
    base_url = serializers.CharField(source="effective_base_url", read_only=True)
    api_key_masked = serializers.SerializerMethodField()
    owner = serializers.SerializerMethodField()
    can_manage = serializers.SerializerMethodField()

    class Meta:
        model = ProviderCredential
        fields = [
            "id",
            "name",
            "slug",
            "preset",
            "preset_label",
            "base_url",
            "organization",
            "is_local",
            "is_active",
            "owner",
            "has_key",
            "api_key_masked",
            "last_test_ok",
            "last_test_message",
            "last_tested_at",
            "models_fetched_at",
            "can_manage",
            "created_at",
        ]
        read_only_fields = fields

    def get_preset_label(self, obj) -> str:
        return obj.preset_row.label

    def get_api_key_masked(self, obj) -> str:
        return mask(obj.api_key or "")

    def get_owner(self, obj) -> dict:
        if obj.owner_team_id:
            return {"type": "team", "team_id": obj.owner_team_id, "team_name": obj.owner_team.name}
        return {"type": "user", "team_id": None, "team_name": None}

    def get_can_manage(self, obj) -> bool:
        request = self.context.get("request")
        return bool(request) and access.allows(request.user, obj, Action.MANAGE)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A personal OpenAI key",
            value={
                "preset": "openai",
                "name": "Work OpenAI",
                "api_key": "sk-proj-…",
                "owner_team": None,
            },
            request_only=True,
        )
    ]
)
class CredentialCreateSerializer(serializers.Serializer):
    preset = serializers.ChoiceField(choices=presets.CHOICES)
    name = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        default="",
        help_text="Defaults to the provider's name.",
    )
    api_key = serializers.CharField(
        max_length=500, required=False, allow_blank=True, write_only=True, trim_whitespace=True
    )
    base_url = serializers.CharField(max_length=500, required=False, allow_blank=True)
    organization = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_local = serializers.BooleanField(required=False, allow_null=True, default=None)
    owner_team = ScopedPrimaryKeyRelatedField(
        queryset=Team.objects.all(),
        action=Action.MANAGE,
        required=False,
        allow_null=True,
        help_text="Team id; omit for a personal credential.",
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Rename and keep the key", value={"name": "Work OpenAI (EU)"}, request_only=True
        )
    ]
)
class CredentialUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    api_key = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        write_only=True,
        help_text="A new key; omit or leave empty to keep the stored one.",
    )
    base_url = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        help_text="Changing it clears the stored key unless a new key is given.",
    )
    organization = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_local = serializers.BooleanField(required=False)
    is_active = serializers.BooleanField(required=False)


class ProviderModelSerializer(serializers.Serializer):
    id = serializers.CharField(source="model.model_id")
    kind = serializers.CharField(source="model.kind")
    label = serializers.CharField(source="model.label")
    family = serializers.CharField(source="model.family")
    size_bytes = serializers.IntegerField(source="model.size_bytes", allow_null=True)
    context_window = serializers.IntegerField(allow_null=True)
    local = serializers.BooleanField()
    price_source = serializers.CharField(help_text="local | genai-prices | override | unpriced")
    input_per_mtok = serializers.CharField(
        allow_null=True, help_text="USD per 1M input tokens; null when unpriced or local"
    )
    output_per_mtok = serializers.CharField(allow_null=True)
    per_request = serializers.CharField(allow_null=True)
    details = serializers.JSONField(source="model.details")


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "user", "assistant"])
    content = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=1_000_000)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Ask Echo (your own local, free credential)",
            value={
                "credential": 1,
                "model": "echo",
                "messages": [{"role": "user", "content": "Say hello in five words."}],
                "max_tokens": 200,
                "stream": False,
            },
            request_only=True,
        )
    ]
)
class CompletionSerializer(serializers.Serializer):
    credential = ScopedPrimaryKeyRelatedField(
        queryset=ProviderCredential.objects.all(),
        action=Action.USE,
        help_text="An id from GET /api/credentials/ (everyone has an Echo credential: model "
        "`echo`, local and free).",
    )
    model = serializers.CharField(max_length=200)
    messages = MessageSerializer(many=True, allow_empty=False, max_length=5000)
    system = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, default=""
    )
    temperature = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=2)
    top_p = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    max_tokens = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=1_000_000
    )
    stop = serializers.ListField(
        child=serializers.CharField(), required=False, max_length=4, default=list
    )
    seed = serializers.IntegerField(
        required=False, allow_null=True, min_value=-(2**63), max_value=2**63 - 1
    )
    stream = serializers.BooleanField(
        required=False, default=False, help_text="Answer with Server-Sent Events."
    )
    team = ScopedPrimaryKeyRelatedField(
        queryset=Team.objects.all(),
        action=Action.USE,
        required=False,
        allow_null=True,
        help_text="Bill a call on one of your personal credentials to this team (you must be "
        "allowed to use the team). Omit: a personal credential's calls are yours, a team "
        "credential's are its team's.",
    )


class AliasSerializer(serializers.ModelSerializer):
    """A gateway alias: `name` is a model name for `/v1` and `/anthropic` clients."""

    model = serializers.CharField(source="model_id", read_only=True)
    credential_slug = serializers.CharField(source="credential.slug", read_only=True)
    owner = serializers.SerializerMethodField()

    class Meta:
        model = ModelAlias
        fields = ["id", "name", "credential", "credential_slug", "model", "owner", "created_at"]
        read_only_fields = fields

    def get_owner(self, obj) -> dict:
        if obj.owner_team_id:
            return {"type": "team", "team_id": obj.owner_team_id, "team_name": obj.owner_team.name}
        return {"type": "user", "team_id": None, "team_name": None}


class AliasCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    credential = ScopedPrimaryKeyRelatedField(
        queryset=ProviderCredential.objects.all(), action=Action.USE
    )
    model = serializers.CharField(max_length=200)
    owner_team = ScopedPrimaryKeyRelatedField(
        queryset=Team.objects.all(),
        action=Action.WRITE,
        required=False,
        allow_null=True,
        help_text="Make it the team's alias (it must use one of the team's credentials).",
    )
