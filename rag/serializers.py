from rest_framework import serializers

from accounts.access import Action
from accounts.fields import ScopedPrimaryKeyRelatedField
from accounts.models import Team
from providers.models import ProviderCredential
from rag.chunking import MAX_SIZE, MIN_SIZE
from rag.embedders import BUILTIN_MODELS, DEFAULT_MODEL
from rag.models import Collection, Document, Embedder


class CollectionSerializer(serializers.ModelSerializer):
    owner = serializers.SerializerMethodField()
    document_count = serializers.SerializerMethodField()

    class Meta:
        model = Collection
        fields = [
            "id",
            "name",
            "description",
            "owner",
            "embedder",
            "embedding_credential",
            "embedding_model",
            "embedding_dims",
            "chunk_size",
            "chunk_overlap",
            "reembed_state",
            "reembed_progress",
            "reembed_error",
            "document_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_owner(self, obj) -> dict:
        if obj.owner_team_id:
            return {"type": "team", "team_id": obj.owner_team_id}
        return {"type": "user", "team_id": None}

    def get_document_count(self, obj) -> int:
        count = getattr(obj, "document_count", None)
        return count if count is not None else obj.documents.count()


class CollectionWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    embedder = serializers.ChoiceField(choices=Embedder.choices, required=False)
    embedding_credential = ScopedPrimaryKeyRelatedField(
        queryset=ProviderCredential.objects.all(),
        action=Action.USE,
        required=False,
        allow_null=True,
        help_text="For provider embeddings: a credential you may use.",
    )
    embedding_model = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="For provider embeddings: the provider's model id. For built-in ones: "
        + "; ".join(
            f"`{m.id}`{' (default)' if m.id == DEFAULT_MODEL else ''} — {m.description}"
            for m in BUILTIN_MODELS.values()
        )
        + " Changing it re-embeds every chunk in the background.",
    )
    chunk_size = serializers.IntegerField(min_value=MIN_SIZE, max_value=MAX_SIZE, required=False)
    chunk_overlap = serializers.IntegerField(min_value=0, max_value=MAX_SIZE // 2, required=False)


class CollectionCreateSerializer(CollectionWriteSerializer):
    name = serializers.CharField(max_length=120)
    owner_team = ScopedPrimaryKeyRelatedField(
        queryset=Team.objects.all(),
        action=Action.WRITE,
        required=False,
        allow_null=True,
        help_text="Team id; omit for a personal collection.",
    )


class DocumentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Document
        fields = [
            "id",
            "collection",
            "title",
            "source_kind",
            "source",
            "file_type",
            "size_bytes",
            "sha256",
            "status",
            "progress",
            "error",
            "page_count",
            "chunk_count",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class DocumentCreateSerializer(serializers.Serializer):
    """JSON: paste text (`text`, optional `title`) or fetch a page (`url`). Files go as
    multipart/form-data with one or more `file` parts."""

    title = serializers.CharField(max_length=300, required=False, allow_blank=True)
    text = serializers.CharField(required=False, trim_whitespace=False, max_length=1_000_000)
    url = serializers.CharField(required=False, max_length=2000)

    def validate(self, attrs):
        if bool(attrs.get("text")) == bool(attrs.get("url")):
            raise serializers.ValidationError("Send either `text` or `url` (or upload files).")
        return attrs


class UploadOutcomeSerializer(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=["added", "duplicate", "refused"])
    message = serializers.CharField()
    document = DocumentSerializer(allow_null=True)


class SearchSerializer(serializers.Serializer):
    query = serializers.CharField(max_length=2000)
    top_k = serializers.IntegerField(min_value=1, max_value=50, default=8)
    threshold = serializers.FloatField(min_value=-1, max_value=1, default=0.25)
    mode = serializers.ChoiceField(choices=["hybrid", "vector", "text"], default="hybrid")


class HitSerializer(serializers.Serializer):
    """Output only (search results)."""

    chunk_id = serializers.IntegerField(read_only=True)
    document_id = serializers.IntegerField(read_only=True)
    collection_id = serializers.IntegerField(read_only=True)
    document_title = serializers.CharField()
    source = serializers.CharField()
    page = serializers.IntegerField(allow_null=True)
    heading = serializers.CharField()
    text = serializers.CharField()
    score = serializers.FloatField()
    similarity = serializers.FloatField(allow_null=True)
    text_rank = serializers.FloatField(allow_null=True)
    highlight = serializers.CharField(
        help_text="The text, HTML-escaped, with <mark> around matches."
    )


class SearchResultSerializer(serializers.Serializer):
    hits = HitSerializer(many=True)
    notices = serializers.ListField(child=serializers.CharField())
    took_ms = serializers.FloatField()


class IngestionStatusSerializer(serializers.Serializer):
    counts = serializers.DictField(child=serializers.IntegerField())
    active = serializers.IntegerField()
    progress = serializers.IntegerField()
    reembed_state = serializers.CharField()
    reembed_progress = serializers.IntegerField()
