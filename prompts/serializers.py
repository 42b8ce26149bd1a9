from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from accounts.access import Action
from accounts.fields import ScopedPrimaryKeyRelatedField
from accounts.models import Team
from billing import money
from prompts.batches import MAX_ROWS, MAX_TARGETS
from prompts.models import (
    BatchCell,
    BatchRun,
    PromptLabel,
    PromptTemplate,
    PromptVersion,
    VariableType,
)
from prompts.services import MAX_NAME, MAX_NOTE, MAX_PART_CHARS, MAX_TAG, MAX_TAGS, MAX_TOP_K
from prompts.variables import MAX_CHOICES, MAX_DEFINITION_CHARS, MAX_VARIABLES
from providers.models import ProviderCredential
from rag.models import Collection


def _owner(obj) -> dict:
    if obj.owner_team_id:
        return {"type": "team", "team_id": obj.owner_team_id}
    return {"type": "user", "team_id": None}


class VariableSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    type = serializers.ChoiceField(choices=VariableType.choices, default=VariableType.TEXT)
    description = serializers.CharField(
        max_length=MAX_DEFINITION_CHARS, required=False, allow_blank=True, default=""
    )
    required = serializers.BooleanField(default=True)
    default = serializers.CharField(
        max_length=MAX_DEFINITION_CHARS,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
    )
    example = serializers.CharField(
        max_length=MAX_DEFINITION_CHARS,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
    )
    choices = serializers.ListField(
        child=serializers.CharField(max_length=MAX_DEFINITION_CHARS, trim_whitespace=False),
        max_length=MAX_CHOICES,
        required=False,
        default=list,
    )


@extend_schema_serializer(component_name="PromptParams")  # chats has a ParamsSerializer too
class ParamsSerializer(serializers.Serializer):
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False, allow_null=True)
    top_p = serializers.FloatField(min_value=0, max_value=1, required=False, allow_null=True)
    max_tokens = serializers.IntegerField(
        min_value=1, max_value=1_000_000, required=False, allow_null=True
    )
    seed = serializers.IntegerField(
        min_value=-(2**63), max_value=2**63 - 1, required=False, allow_null=True
    )


class ContentSerializer(serializers.Serializer):
    """What a version holds. Omitted fields keep the newest version's value (new versions) or
    are empty (new prompts)."""

    system_text = serializers.CharField(
        max_length=MAX_PART_CHARS, required=False, allow_blank=True, trim_whitespace=False
    )
    user_text = serializers.CharField(
        max_length=MAX_PART_CHARS, required=False, allow_blank=True, trim_whitespace=False
    )
    variables = VariableSerializer(many=True, required=False, max_length=MAX_VARIABLES)
    credential = ScopedPrimaryKeyRelatedField(
        queryset=ProviderCredential.objects.all(),
        required=False,
        allow_null=True,
        help_text="Preferred model's credential: one of the prompt owner's.",
    )
    model = serializers.CharField(max_length=200, required=False, allow_blank=True)
    params = ParamsSerializer(required=False)
    collection = ScopedPrimaryKeyRelatedField(
        queryset=Collection.objects.all(),
        required=False,
        allow_null=True,
        help_text="A collection to search when the prompt is used (a team prompt: the team's).",
    )
    top_k = serializers.IntegerField(min_value=1, max_value=MAX_TOP_K, required=False)


class PromptCreateSerializer(ContentSerializer):
    name = serializers.CharField(max_length=MAX_NAME)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=MAX_TAG), max_length=MAX_TAGS, required=False
    )
    owner_team = ScopedPrimaryKeyRelatedField(
        queryset=Team.objects.all(),
        action=Action.WRITE,
        required=False,
        allow_null=True,
        help_text="Team id; omit for a personal prompt.",
    )
    change_note = serializers.CharField(max_length=MAX_NOTE, required=False, allow_blank=True)


class PromptUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=MAX_NAME, required=False)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=MAX_TAG), max_length=MAX_TAGS, required=False
    )


class VersionCreateSerializer(ContentSerializer):
    change_note = serializers.CharField(max_length=MAX_NOTE, required=False, allow_blank=True)
    based_on = serializers.IntegerField(
        min_value=0,
        required=False,
        allow_null=True,
        help_text="The version number your edit started from: if someone saved a newer one "
        "meanwhile, the answer is 409 and nothing is saved.",
    )


class VersionSerializer(serializers.ModelSerializer):
    created_by = serializers.SerializerMethodField()
    labels = serializers.SerializerMethodField()
    variables = VariableSerializer(many=True)
    params = serializers.DictField()

    class Meta:
        model = PromptVersion
        fields = [
            "id",
            "number",
            "system_text",
            "user_text",
            "variables",
            "credential",
            "model",
            "params",
            "collection",
            "top_k",
            "change_note",
            "created_by",
            "created_at",
            "labels",
        ]
        read_only_fields = fields

    def get_created_by(self, obj) -> str | None:
        return obj.created_by.username if obj.created_by_id else None

    def get_labels(self, obj) -> list[str]:
        labels = self.context.get("labels")
        if labels is None:
            return sorted(obj.labels.values_list("name", flat=True))
        return sorted(name for name, number in labels.items() if number == obj.number)


class PromptSerializer(serializers.ModelSerializer):
    owner = serializers.SerializerMethodField()
    labels = serializers.SerializerMethodField()

    class Meta:
        model = PromptTemplate
        fields = [
            "id",
            "name",
            "description",
            "tags",
            "owner",
            "latest_number",
            "labels",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_owner(self, obj) -> dict:
        return _owner(obj)

    def get_labels(self, obj) -> dict[str, int]:
        """Label name → version number."""
        return {label.name: label.version.number for label in obj.labels.select_related("version")}


class LabelSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.number")
    version_id = serializers.IntegerField(read_only=True)
    updated_by = serializers.SerializerMethodField()

    class Meta:
        model = PromptLabel
        fields = ["name", "version", "version_id", "updated_by", "updated_at"]
        read_only_fields = fields

    def get_updated_by(self, obj) -> str | None:
        return obj.updated_by.username if obj.updated_by_id else None


class LabelSetSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=40)
    version = serializers.IntegerField(min_value=1, help_text="The version number to point at.")


class RenderSerializer(serializers.Serializer):
    version = serializers.CharField(
        max_length=40,
        required=False,
        default="latest",
        help_text="A version number (3 or v3) or a label (production). Default: latest.",
    )
    variables = serializers.DictField(required=False, default=dict)
    ground = serializers.BooleanField(
        default=True, help_text="Search the linked collection and add its context (if any)."
    )


class RenderedSerializer(serializers.Serializer):
    template = serializers.IntegerField(source="template_id")
    version = serializers.IntegerField(source="version_number")
    version_id = serializers.IntegerField(read_only=True)
    system = serializers.CharField()
    user = serializers.CharField()
    messages = serializers.SerializerMethodField()
    values = serializers.DictField(child=serializers.CharField())
    sources = serializers.SerializerMethodField()
    notices = serializers.ListField(child=serializers.CharField())
    context = serializers.CharField(
        help_text="The retrieved context at the head of `user` (empty when none)."
    )

    def get_messages(self, obj) -> list[dict]:
        head = [{"role": "system", "content": obj.system}] if obj.system else []
        return head + [{"role": m.role, "content": m.content} for m in obj.messages]

    def get_sources(self, obj) -> list[dict]:
        return [
            {
                "number": s.number,
                "chunk_id": s.chunk_id,
                "collection_id": s.collection_id,
                "title": s.title,
                "page": s.page,
            }
            for s in obj.sources
        ]


class DiffLineSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["same", "added", "removed", "gap"])
    text = serializers.CharField()


class FieldDiffSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    changed = serializers.BooleanField()
    lines = DiffLineSerializer(many=True)


class ImportSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=["json", "yaml"], default="json")
    data = serializers.CharField(
        trim_whitespace=False, help_text="The exported document, as text (JSON or YAML)."
    )
    owner_team = ScopedPrimaryKeyRelatedField(
        queryset=Team.objects.all(),
        action=Action.WRITE,
        required=False,
        allow_null=True,
        help_text="Import into this team; omit for personal prompts.",
    )


# --- Batches ---------------------------------------------------------------------------------------


class TargetSerializer(serializers.Serializer):
    credential = ScopedPrimaryKeyRelatedField(
        queryset=ProviderCredential.objects.all(),
        action=Action.USE,
        help_text="One of the prompt owner's credentials you may use.",
    )
    model = serializers.CharField(max_length=200)


class BatchCreateSerializer(serializers.Serializer):
    template = ScopedPrimaryKeyRelatedField(
        queryset=PromptTemplate.objects.all(), action=Action.USE
    )
    version = serializers.CharField(
        max_length=40, required=False, default="latest", help_text="Number or label."
    )
    rows = serializers.ListField(
        child=serializers.DictField(),
        max_length=MAX_ROWS,
        required=False,
        help_text="Variable values, one object per row.",
    )
    csv = serializers.CharField(
        required=False,
        trim_whitespace=False,
        max_length=2 * 1024 * 1024,
        help_text="Instead of rows: a CSV table whose first line names the variables.",
    )
    targets = TargetSerializer(many=True, max_length=MAX_TARGETS)
    params = ParamsSerializer(required=False)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)


@extend_schema_serializer(component_name="BatchEstimate")  # the playground has an Estimate
class EstimateSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    cells = serializers.IntegerField()
    total = serializers.SerializerMethodField()
    unpriced_cells = serializers.IntegerField()
    output_assumed = serializers.IntegerField()
    output_is_limit = serializers.BooleanField()
    counted_exactly = serializers.BooleanField()
    targets = serializers.SerializerMethodField()

    def get_total(self, obj) -> str:
        return money.decimal_str(obj.total)

    def get_targets(self, obj) -> list[dict]:
        return [
            {
                "label": t.label,
                "input_tokens": t.input_tokens,
                "output_tokens": t.output_tokens,
                "cost": money.decimal_str(t.cost) if t.cost is not None else None,
                "local": t.local,
            }
            for t in obj.targets
        ]


class BatchSerializer(serializers.ModelSerializer):
    owner = serializers.SerializerMethodField()
    version = serializers.IntegerField(source="version.number")
    version_id = serializers.IntegerField(read_only=True)
    targets = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    estimate = serializers.SerializerMethodField()

    class Meta:
        model = BatchRun
        fields = [
            "id",
            "title",
            "template",
            "version",
            "version_id",
            "owner",
            "status",
            "cancel_requested",
            "columns",
            "targets",
            "params",
            "row_count",
            "cell_count",
            "estimate",
            "estimate_unpriced",
            "progress",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_owner(self, obj) -> dict:
        return _owner(obj)

    def get_targets(self, obj) -> list[dict]:
        return [{"credential": t["credential"], "model": t["model"]} for t in obj.targets]

    def get_estimate(self, obj) -> str | None:
        return money.decimal_str(obj.estimate)

    def get_progress(self, obj) -> dict | None:
        progress = self.context.get("progress")
        if progress is None:
            return None
        return {
            "total": progress.total,
            "finished": progress.finished,
            "percent": progress.percent,
            "counts": progress.counts,
            "cost": money.decimal_str(progress.cost),
            "unpriced": progress.unpriced,
            "spent": money.decimal_str(progress.spent),
            "spent_calls": progress.spent_calls,
        }


class CellSerializer(serializers.ModelSerializer):
    row = serializers.IntegerField(source="row_index")
    target = serializers.IntegerField(source="target_index")
    cost = serializers.SerializerMethodField()

    class Meta:
        model = BatchCell
        fields = [
            "id",
            "row",
            "target",
            "status",
            "attempts",
            "output",
            "input_tokens",
            "output_tokens",
            "tokens_estimated",
            "cost",
            "cost_source",
            "ttft_ms",
            "duration_ms",
            "error_code",
            "error_message",
            "usage",
            "finished_at",
        ]
        read_only_fields = fields

    def get_cost(self, obj) -> str | None:
        return money.decimal_str(obj.cost)
